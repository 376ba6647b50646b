import DTwinContract
import Foundation

/// What dtwin makes of a message on its topic tree (README: "Topic tree", "The IoT event"): the same reading of
/// topics and payloads the bridge uses, told to a person.
public enum Meaning: Sendable, Equatable {
    /// `<dev>/up`: a reading, an awake event, or bytes forwarded as they are.
    case reading(device: DeviceName, value: Double, unit: String?, seq: Int64?, format: DevicePayload.Format)
    case awake(device: DeviceName)
    case raw(device: DeviceName, format: DevicePayload.Format, note: String?)
    /// `<dev>/down`: a command for the device.
    case command(device: DeviceName, text: String)
    /// `<dev>/status`: `online`/`offline` (retained; `offline` is usually the last will).
    case deviceStatus(device: DeviceName, status: String)
    /// `<dev>/sms`: the device asks the bridge to text its people.
    case smsRequest(device: DeviceName, text: String)
    /// `<prefix>/bridge/status`, or one instance's `<prefix>/bridge/status/<instance>`.
    case bridgeStatus(status: String, instance: String? = nil)
    /// `<dev>/state`: the twin document the bridge keeps (retained); `nil` when the payload is not one.
    case twinDocument(device: DeviceName, TwinDocument?)
    /// `<dev>/state/set`: someone asks for a desired state.
    case twinSet(device: DeviceName, text: String)
    /// `<dev>/state/rejected`: the bridge refused a `state/set`; `nil` when the payload is not its JSON.
    case twinRejected(device: DeviceName, TwinRejection?)
    /// The bridge could not deliver a message; `letter` is `nil` when the payload is not one.
    case deadLetter(DeadLetter?)
    /// Shaped like a device topic, but the name is not valid: the bridge dead-letters it.
    case invalidDevice(reason: String)
    /// Not a dtwin topic: the bridge ignores it.
    case outsideTree(reason: String)

    /// Reads `observation` against `tree`. Pure and total.
    public static func of(_ observation: Observation, in tree: TopicTree) -> Meaning {
        let text = String(decoding: observation.payload, as: UTF8.self)
        switch tree.parse(observation.topic) {
        case .device(let topic):
            switch topic.kind {
            case .up:
                return upstream(observation.payload, from: topic.device)
            case .down: return .command(device: topic.device, text: text)
            case .status: return .deviceStatus(device: topic.device, status: text)
            case .sms: return .smsRequest(device: topic.device, text: text)
            }
        case .twin(let device, .document):
            return .twinDocument(device: device, try? JSONDecoder().decode(TwinDocument.self, from: Data(observation.payload)))
        case .twin(let device, .set):
            return .twinSet(device: device, text: text)
        case .twin(let device, .rejected):
            return .twinRejected(device: device, try? JSONDecoder().decode(TwinRejection.self, from: Data(observation.payload)))
        case .ipCommandCopy(let device):
            // A cellular device's message, which the bridge took in from Twilio: read as on `up`.
            return upstream(observation.payload, from: device)
        case .bridgeStatus:
            return .bridgeStatus(status: text)
        case .instanceStatus(let instance):
            return .bridgeStatus(status: text, instance: instance)
        case .deadLetter:
            return .deadLetter(try? JSONDecoder().decode(DeadLetter.self, from: Data(observation.payload)))
        case .invalidDevice(let error, _):
            return .invalidDevice(reason: "\(error)")
        case .outsideTree(let reason):
            return .outsideTree(reason: reason)
        }
    }

    static func upstream(_ payload: [UInt8], from device: DeviceName) -> Meaning {
        let decoded = DevicePayload.decode(payload)
        switch decoded.kind {
        case .reading where decoded.value != nil:
            return .reading(device: device, value: decoded.value!, unit: decoded.unit, seq: decoded.seq, format: decoded.format)
        case .awake:
            return .awake(device: device)
        default:
            return .raw(device: device, format: decoded.format, note: decoded.note)
        }
    }

    /// The device the message is about, if any.
    public var device: DeviceName? {
        switch self {
        case .reading(let device, _, _, _, _), .awake(let device), .raw(let device, _, _), .command(let device, _),
            .deviceStatus(let device, _), .smsRequest(let device, _), .twinDocument(let device, _), .twinSet(let device, _),
            .twinRejected(let device, _):
            return device
        case .deadLetter(let letter):
            return letter?.device.flatMap(DeviceName.init)
        case .bridgeStatus, .invalidDevice, .outsideTree:
            return nil
        }
    }

    /// One short phrase for a person: `uno1 reading 512`, `command LIG for uno1`, ….
    public var summary: String {
        switch self {
        case .reading(let device, let value, let unit, let seq, _):
            return "\(device) reading \(value.readingText)\(unit.map { " \($0)" } ?? "")\(seq.map { " (seq \($0))" } ?? "")"
        case .awake(let device):
            return "\(device) awake (booted)"
        case .raw(let device, let format, let note):
            return "\(device) raw \(format.rawValue), forwarded as is\(note.map { ": \($0)" } ?? "")"
        case .command(let device, let text):
            return "command \(text.debugDescription) for \(device)"
        case .deviceStatus(let device, let status):
            return "\(device) is \(status)"
        case .smsRequest(let device, let text):
            return "\(device) asks to SMS its people: \(text.debugDescription)"
        case .bridgeStatus(let status, let instance):
            return "bridge\(instance.map { " instance \($0)" } ?? "") is \(status)"
        case .twinDocument(let device, let twin):
            guard let twin else { return "\(device) twin (not the bridge's JSON)" }
            var parts = ["desired \(Self.pairs(twin.desired))", "reported \(Self.pairs(twin.reported))"]
            if !twin.delta.isEmpty { parts.append("delta \(twin.delta.keys.sorted().joined(separator: ", "))") }
            let failed = twin.pending.filter(\.value.failed).keys.sorted()
            if !failed.isEmpty { parts.append("FAILED \(failed.joined(separator: ", "))") }
            return "\(device) twin v\(twin.version): \(parts.joined(separator: "; "))"
        case .twinSet(let device, let text):
            return "desired state asked for \(device): \(text)"
        case .twinRejected(let device, let rejection):
            guard let rejection else { return "twin change for \(device) REFUSED (not the bridge's JSON)" }
            return "twin change for \(device) REFUSED (\(rejection.code)): \(rejection.message)"
        case .deadLetter(let letter):
            guard let letter else { return "dead letter (not the bridge's JSON)" }
            return "DEAD LETTER\(letter.device.map { " from \($0)" } ?? ""): \(letter.reason)"
        case .invalidDevice(let reason):
            return "bad device name, the bridge dead-letters it: \(reason)"
        case .outsideTree(let reason):
            return "not dtwin's, the bridge ignores it: \(reason)"
        }
    }

    /// The fields `--json` adds under `decoded`.
    public var fields: [String: JSONValue] {
        var fields: [String: JSONValue] = [:]
        if let device { fields["device"] = .string(device.rawValue) }
        switch self {
        case .reading(_, let value, let unit, let seq, let format):
            fields["type"] = .string("reading")
            fields["value"] = .number(value)
            if let unit { fields["unit"] = .string(unit) }
            if let seq { fields["seq"] = .number(Double(seq)) }
            fields["format"] = .string(format.rawValue)
        case .awake:
            fields["type"] = .string("awake")
        case .raw(_, let format, let note):
            fields["type"] = .string("raw")
            fields["format"] = .string(format.rawValue)
            if let note { fields["note"] = .string(note) }
        case .command(_, let text):
            fields["type"] = .string("command")
            fields["command"] = .string(text)
        case .deviceStatus(_, let status):
            fields["type"] = .string("status")
            fields["status"] = .string(status)
        case .smsRequest(_, let text):
            fields["type"] = .string("sms")
            fields["text"] = .string(text)
        case .bridgeStatus(let status, let instance):
            fields["type"] = .string("bridge-status")
            fields["status"] = .string(status)
            if let instance { fields["instance"] = .string(instance) }
        case .twinDocument(_, let twin):
            fields["type"] = .string("twin")
            if let twin {
                fields["version"] = .number(Double(twin.version))
                fields["delta"] = .object(twin.delta)
            }
        case .twinSet(_, let text):
            fields["type"] = .string("twin-set")
            fields["text"] = .string(text)
        case .twinRejected(_, let rejection):
            fields["type"] = .string("twin-rejected")
            if let rejection {
                fields["code"] = .number(Double(rejection.code))
                fields["reason"] = .string(rejection.message)
            }
        case .deadLetter(let letter):
            fields["type"] = .string("deadletter")
            if let letter {
                fields["reason"] = .string(letter.reason)
                fields["topic"] = .string(letter.topic)
            }
        case .invalidDevice(let reason):
            fields["type"] = .string("invalid-device")
            fields["reason"] = .string(reason)
        case .outsideTree(let reason):
            fields["type"] = .string("outside-tree")
            fields["reason"] = .string(reason)
        }
        return fields
    }

    /// `led=on, period=300`: keys in order, values as people read them; `-` when empty.
    static func pairs(_ values: [String: JSONValue]) -> String {
        values.isEmpty ? "-" : values.sorted { $0.key < $1.key }.map { "\($0.key)=\(TwinDocument.shown($0.value))" }.joined(separator: ", ")
    }
}
