import DTwinContract

/// What a person asked for in an SMS to the Twilio number (README: "SMS and cellular devices").
///
/// ```
/// @a LIG          command LIG for device a
/// a: LIG          the same
/// LIG             command for the device that last texted this number, or its only device
/// STATUS a        the latest reading of a (STATUS alone: the default device)
/// SET a led on    a desired state for a's twin (SET led on: the default device)
/// HELP            what this number may do
/// ```
/// Device names are validated like every other name, so `@a/# X` or `@+ X` never reach a topic.
public enum SMSRequest: Sendable, Equatable {
    case help
    case status(DeviceName?)
    /// A command; `nil` device means "the default device for this sender".
    case command(String, to: DeviceName?)
    /// The body names something that is not a device name.
    case invalidDevice(InvalidDeviceName)
    /// `@a` or `a:` with nothing after it.
    case missingCommand(DeviceName)
    /// `SET [device] key value`: a desired state for the device's twin.
    case set(key: String, value: String, to: DeviceName?)
    /// `SET` without a key and a value.
    case incompleteSet
    case empty

    /// Parses an SMS body. Pure and total: every body gives an answer.
    public static func parse(_ body: String) -> SMSRequest {
        let text = String(body.trimmingWhitespace())
        guard !text.isEmpty else { return .empty }
        let firstWord = text.prefix(while: { !$0.isWhitespace })
        let rest = String(text.dropFirst(firstWord.count).trimmingWhitespace())

        switch firstWord.uppercased() {
        case "HELP" where rest.isEmpty:
            return .help
        case "STATUS":
            guard !rest.isEmpty else { return .status(nil) }
            return device(rest, then: { .status($0) })
        case "SET":
            let words = rest.split(whereSeparator: \.isWhitespace).map(String.init)
            switch words.count {
            case 2: return .set(key: words[0].lowercased(), value: words[1], to: nil)
            case 3: return device(words[0], then: { .set(key: words[1].lowercased(), value: words[2], to: $0) })
            default: return .incompleteSet
            }
        default:
            break
        }
        if firstWord.hasPrefix("@") {
            return addressed(name: String(firstWord.dropFirst()), command: rest)
        }
        // `a: LIG` (or `a:LIG`): the text before the first colon, if it is one word.
        if let colon = firstWord.firstIndex(of: ":") {
            let name = String(firstWord[..<colon])
            let command = String((firstWord[firstWord.index(after: colon)...] + " " + rest).trimmingWhitespace())
            return addressed(name: name, command: command)
        }
        return .command(text, to: nil)
    }

    private static func addressed(name: String, command: String) -> SMSRequest {
        device(name) { device in command.isEmpty ? .missingCommand(device) : .command(command, to: device) }
    }

    private static func device(_ text: String, then make: (DeviceName) -> SMSRequest) -> SMSRequest {
        do {
            return make(try DeviceName(validating: text))
        } catch {
            return .invalidDevice(error)
        }
    }
}
