import DTwinContract
import DTwinMQTT

/// What the bridge does with one message from the broker. Pure: the arrival time and the id
/// are given, so every branch is unit-tested without a broker.
enum IntakeDecision: Equatable {
    /// A device message for the upstream.
    case deliver(DeviceMessage)
    /// Cannot be delivered, but must not be lost: publish on the dead letter topic.
    case deadLetter(DeadLetter)
    /// A device's retained `online`/`offline`.
    case deviceStatus(DeviceName, String)
    /// A device's text for its subscribers' phones.
    case sms(DeviceName, String)
    /// A request to change a device's twin (`<dev>/state/set`).
    case twinSet(DeviceName, [UInt8])
    /// What `<prefix>/bridge/status` says (it matches `<prefix>/+/status`; `instance` nil), or
    /// `<prefix>/bridge/status/<instance>` (one of several bridges), and whether it came from
    /// the broker's retained store (at subscribe time) rather than live.
    case bridgeStatus(String, retained: Bool, instance: String?)
    /// The bridge's own other topics (dead letters, IP-command copies, twin documents and
    /// refusals): nothing to do.
    case ownTopic
    /// Not a topic the bridge handles; the reason is logged.
    case ignore(String)
}

enum MessageIntake {
    static func decide(
        _ message: MQTTMessage, tree: TopicTree, maxPayload: Int, receivedAtMillis: Int64, id: MessageID
    ) -> IntakeDecision {
        func deadLetter(_ reason: String, device: String? = nil) -> IntakeDecision {
            .deadLetter(
                DeadLetter(
                    topic: message.topic, payload: message.payload, reason: reason, device: device,
                    messageId: id.rawValue, receivedAt: Timestamp.iso8601(millis: receivedAtMillis), attempts: 0))
        }
        switch tree.parse(message.topic) {
        case .device(let topic):
            switch topic.kind {
            case .up:
                guard message.payload.count <= maxPayload else {
                    return deadLetter(
                        "payload of \(message.payload.count) bytes is over the limit of \(maxPayload) bytes (maxPayload)",
                        device: topic.device.rawValue)
                }
                return .deliver(
                    DeviceMessage(
                        id: id, device: topic.device, topic: message.topic, payload: message.payload,
                        receivedAtMillis: receivedAtMillis))
            case .status:
                let text = String(decoding: message.payload.prefix(64), as: UTF8.self)
                return .deviceStatus(topic.device, text)
            case .sms:
                // A retained text would go out again on every reconnect: SMS cost money.
                guard !message.retain else { return .ignore("a retained SMS text is not sent (publish it without retain)") }
                guard let text = String(validating: message.payload, as: UTF8.self), !text.isEmpty else {
                    return .ignore("an SMS text must be non-empty UTF-8")
                }
                return .sms(topic.device, text)
            case .down:
                return .ignore("the bridge does not consume down topics")
            }
        case .invalidDevice(let error, let kind):
            // A device with a bad name still sent something: keep it where an operator can see it.
            if kind == .up { return deadLetter("\(error)") }
            return .ignore("\(error)")
        case .bridgeStatus:
            return .bridgeStatus(String(decoding: message.payload.prefix(64), as: UTF8.self), retained: message.retain, instance: nil)
        case .instanceStatus(let instance):
            return .bridgeStatus(String(decoding: message.payload.prefix(64), as: UTF8.self), retained: message.retain, instance: instance)
        case .twin(let device, .set):
            // A retained request would be applied again at every start, undoing later changes.
            guard !message.retain else { return .ignore("a retained state/set is not applied (publish it without retain)") }
            return .twinSet(device, message.payload)
        case .deadLetter, .ipCommandCopy, .twin(_, .document), .twin(_, .rejected):
            return .ownTopic
        case .outsideTree(let reason):
            return .ignore(reason)
        }
    }
}
