import DTwinContract

/// What the SMS webhook does with a request: the addressing rules of README: "SMS and cellular devices", pure.
///
/// Answers are short ASCII so each fits one GSM-7 SMS segment; refusals never say whether a
/// device exists, only that this number may not command it.
public enum SMSAction: Sendable, Equatable {
    /// Publish `command` for `device`, then answer `reply`.
    case command(String, device: DeviceName, reply: String)
    /// Answer with the latest reading of `device`.
    case status(DeviceName)
    /// Set `key` to `value` in the desired state of `device`'s twin, then say what happens.
    case setDesired(DeviceName, key: String, value: JSONValue)
    /// Answer `text`; nothing is published.
    case reply(String)
    /// Answer `text` politely; `reason` is for the log.
    case refuse(String, reason: String)
}

public enum SMSAddressing {
    public static func decide(
        _ request: SMSRequest, from sender: PhoneNumber?, book: SMSAddressBook, lastNotified: DeviceName?
    ) -> SMSAction {
        let allowed = sender.map(book.devices(for:)) ?? []
        guard let sender, !allowed.isEmpty else {
            return .refuse(
                "Sorry, this number is not allowed to command devices here.",
                reason: "sender is on no device's phones list")
        }
        let yours = "Your devices: " + allowed.map(\.rawValue).joined(separator: ", ") + "."
        // The device a bare command or STATUS means: the one that last texted this number, or
        // the only one it may command.
        let defaultDevice = lastNotified.flatMap { allowed.contains($0) ? $0 : nil } ?? (allowed.count == 1 ? allowed[0] : nil)

        func check(_ device: DeviceName, then action: SMSAction) -> SMSAction {
            guard book.may(sender, command: device) else {
                return .refuse("Sorry, this number may not command \(device).", reason: "sender may not command \(device)")
            }
            return action
        }

        switch request {
        case .help, .empty:
            return .reply("Send: @device command, device: command, STATUS device, SET device key value, or HELP. " + yours)
        case .incompleteSet:
            return .reply("Send: SET device key value, e.g. SET \(allowed[0]) led on. " + yours)
        case .set(let key, let value, let device):
            guard let device = device ?? defaultDevice else {
                return .reply("Which device? Send: SET device \(key) \(value.prefix(20)). " + yours)
            }
            return check(device, then: .setDesired(device, key: key, value: desiredValue(value)))
        case .invalidDevice(let error):
            return .refuse("Sorry, that is not a device name: \(error.reason). " + yours, reason: "\(error)")
        case .missingCommand(let device):
            return check(device, then: .reply("What should \(device) do? Send: @\(device) command"))
        case .status(let device):
            guard let device = device ?? defaultDevice else {
                return .reply("Which device? Send: STATUS device. " + yours)
            }
            return check(device, then: .status(device))
        case .command(let text, let device):
            let command: String
            do throws(InvalidDeviceCommand) { command = try DeviceCommand(validating: text).text } catch {
                return .refuse("Not sent: \(error.reason).", reason: error.reason)
            }
            guard let device = device ?? defaultDevice else {
                return .reply("Which device? Send: @device \(command). " + yours)
            }
            return check(device, then: .command(command, device: device, reply: "Sent to \(device): \(command.prefix(60))"))
        }
    }

    /// A value as a person texts it: ``TwinDocument/typed(_:)``, and yes/no, which a phone's
    /// keyboard offers first.
    static func desiredValue(_ text: String) -> JSONValue {
        switch text.lowercased() {
        case "yes": .bool(true)
        case "no": .bool(false)
        default: TwinDocument.typed(text)
        }
    }
}
