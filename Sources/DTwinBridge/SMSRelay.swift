import DTwinContract
import DTwinTwilio
import Logging

/// Turns a device's text (its `sms` topic, or an alert about it) into one SMS per phone on the
/// device's `phones` list.
public struct SMSRelay: Sendable {
    public let outbox: SMSOutbox
    public let book: SMSAddressBook
    /// Twilio's limit for one message body; longer texts are cut, and the cut is logged.
    static let maxBody = 1600

    public init(outbox: SMSOutbox, book: SMSAddressBook) {
        self.outbox = outbox
        self.book = book
    }

    /// Queues the SMS; returns how many were queued.
    @discardableResult
    func relay(_ text: String, about device: DeviceName, origin: OutboundSMS.Origin, logger: Logger) -> Int {
        let phones = book.phones(of: device)
        guard !phones.isEmpty else {
            logger.warning(
                "SMS not sent: the device has no phones (devices.\(device).phones)",
                metadata: ["device": "\(device)", "origin": "\(origin.rawValue)"])
            return 0
        }
        var body = text
        if body.count > Self.maxBody {
            logger.warning("SMS text cut to \(Self.maxBody) characters", metadata: ["device": "\(device)", "length": "\(body.count)"])
            body = String(body.prefix(Self.maxBody))
        }
        for phone in phones { outbox.submit(OutboundSMS(to: phone, body: body, device: device, origin: origin)) }
        return phones.count
    }
}
