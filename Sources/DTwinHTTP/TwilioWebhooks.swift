import DTwinBridge
import DTwinContract
import DTwinStore
import DTwinTwilio
import Foundation
import Logging

/// The three Twilio webhooks (README: "SMS and cellular devices"): inbound SMS, SMS status callbacks, Super SIM IP
/// commands. Every request must carry a valid `X-Twilio-Signature` for the URL Twilio called
/// (`http.publicURL` + the request target); anything else is answered 403 and changes nothing.
public final class TwilioWebhooks: Sendable {
    public static let formContentType = "application/x-www-form-urlencoded"

    /// `nil` without an auth token: then no webhook can be verified, so all are refused.
    let validator: TwilioRequestValidator?
    /// Scheme, host and any path prefix Twilio uses to reach this server; empty means "from
    /// the request's Host header", which is only right without a proxy in between.
    let publicURL: String
    let book: SMSAddressBook
    let outbox: SMSOutbox?
    let commands: any CommandSending
    let directory: any DeviceDirectory
    let cellular: any CellularIntake
    let store: (any TwinStore)?
    let logger: Logger
    /// The SIDs acted on (the spool's table, or memory without a spool).
    let seen: any WebhookSidLedger
    /// The devices' twins, for `SET` and `STATUS` (`nil` without a twin table).
    let twins: TwinService?
    /// The account the webhooks must be for: a request signed by another account's token is
    /// still another account's request.
    let accountSid: String?
    public let counters = WebhookCounters()

    public init(
        validator: TwilioRequestValidator?, accountSid: String? = nil, publicURL: String, book: SMSAddressBook, outbox: SMSOutbox?,
        commands: any CommandSending, directory: any DeviceDirectory, cellular: any CellularIntake, store: (any TwinStore)?,
        seen: any WebhookSidLedger = SeenMessageSids(), twins: TwinService? = nil, logger: Logger
    ) {
        self.twins = twins
        self.validator = validator
        self.accountSid = accountSid
        self.seen = seen
        self.publicURL = publicURL.trimmingTrailingSlashes()
        self.book = book
        self.outbox = outbox
        self.commands = commands
        self.directory = directory
        self.cellular = cellular
        self.store = store
        self.logger = logger
    }

    // MARK: POST /twilio/sms

    public func sms(_ request: WebhookRequest) async -> WebhookAnswer {
        let form: [FormParameter]
        switch verify(request, webhook: "sms") {
        case .success(let parameters): form = parameters
        case .failure(let refusal): return refusal.answer
        }
        counters.bump(\.smsReceived)
        guard let sid = form[first: "MessageSid"], !sid.isEmpty else {
            return .text(400, "MessageSid is missing")
        }
        switch await claim(sid) {
        case .new: break
        case .repeated:
            logger.info("SMS webhook repeated; already handled", metadata: ["messageSid": "\(sid)"])
            return Self.twiml(TwiML.empty)
        case .unknown:
            return Self.twiml(TwiML.message("Sorry, the gateway cannot take commands just now. Please try again later."))
        }
        let sender = form[first: "From"].flatMap(PhoneNumber.init)
        let request = SMSRequest.parse(form[first: "Body"] ?? "")
        let lastNotified = sender.flatMap { outbox?.lastNotified($0) }
        let action = SMSAddressing.decide(request, from: sender, book: book, lastNotified: lastNotified)
        let from = sender?.masked ?? "(none)"
        switch action {
        case .refuse(let text, let reason):
            counters.bump(\.refused)
            logger.notice("SMS refused", metadata: ["from": "\(from)", "messageSid": "\(sid)", "reason": "\(reason)"])
            return Self.twiml(TwiML.message(text))
        case .reply(let text):
            return Self.twiml(TwiML.message(text))
        case .status(let device):
            return Self.twiml(TwiML.message(await statusText(device)))
        case .setDesired(let device, let key, let value):
            return Self.twiml(TwiML.message(await setDesired(key, value, on: device, messageSid: sid)))
        case .command(let command, let device, let reply):
            do {
                let route = try await commands.send(command, to: device, from: .person)
                counters.bump(\.commandsSent)
                logger.info(
                    "SMS command sent", metadata: ["from": "\(from)", "device": "\(device)", "route": "\(route.rawValue)", "messageSid": "\(sid)"])
                // Stored, but the broker has not taken it yet: say so rather than "sent".
                let answer = route == .queued ? "Queued for \(device): it is sent as soon as the broker is back." : reply
                return Self.twiml(TwiML.message(answer))
            } catch {
                // Not sent: forget the SID so a retry of this webhook may send it.
                await seen.release(sid)
                logger.error("SMS command not sent", metadata: ["device": "\(device)", "messageSid": "\(sid)", "error": "\(error)"])
                return Self.twiml(TwiML.message("Sorry, \(device) cannot be reached just now. Please try again later."))
            }
        }
    }

    /// `SET uno1 led on`: the twin's desired state, and what happens next, in one SMS.
    func setDesired(_ key: String, _ value: JSONValue, on device: DeviceName, messageSid: String) async -> String {
        guard let twins else { return "Sorry, this gateway keeps no device states (no twin table)." }
        let shown = TwinDocument.shown(value)
        do {
            switch try await twins.setDesired([key: value], for: device, ifVersion: nil) {
            case .success(let document):
                logger.info("SMS set a desired state", metadata: ["device": "\(device)", "key": "\(key)", "messageSid": "\(messageSid)"])
                guard document.pending[key] != nil else { return "\(device) \(key) is already \(shown)." }
                let online = document.reported["online"] == .bool(true)
                return online ? "\(device) \(key) set to \(shown): sent." : "\(device) \(key) set to \(shown): sent when \(device) is back online."
            case .failure(let refusal):
                return "Not set: \(refusal)."
            }
        } catch {
            logger.error("SMS desired state not stored", metadata: ["device": "\(device)", "error": "\(error)"])
            return "Sorry, \(device) cannot be set just now. Please try again later."
        }
    }

    /// The twin's reported keys the reading itself already says.
    static let readingKeys: Set<String> = ["value", "at", "unit", "online"]

    /// `a: 734 at 2026-11-25T10:00:00.000Z (online). Reported: led on, period 60. Pending: led off.`
    func statusText(_ device: DeviceName) async -> String {
        let entry = directory.entry(device)
        var reading = entry?.lastReading.map { (value: $0.value, at: Timestamp.iso8601(millis: $0.atMillis)) }
        if reading == nil, let store, let items = try? await store.items(device: device, since: nil, until: nil, limit: 20),
            let item = items.first(where: { $0.kind == .reading }), let value = item.value
        {
            reading = (value, item.ts)
        }
        let status = entry?.status.map { " (\($0))" } ?? ""
        // The twin: what the device reported beside its reading (LED, period), and what waits.
        var twin = ""
        if let twins, let document = try? await twins.document(device) {
            let state = document.reported.filter { !Self.readingKeys.contains($0.key) }.sorted { $0.key < $1.key }
            if !state.isEmpty { twin += " Reported: " + state.map { "\($0.key) \(TwinDocument.shown($0.value))" }.joined(separator: ", ") + "." }
            let keys = document.pending.sorted { $0.key < $1.key }.map {
                "\($0.key) \(TwinDocument.shown($0.value.value))\($0.value.failed ? " (failed)" : "")"
            }
            if !keys.isEmpty { twin += " Pending: " + keys.joined(separator: ", ") + "." }
        }
        guard let reading else { return "\(device): no reading yet\(status).\(twin)" }
        return "\(device): \(reading.value.readingText) at \(reading.at)\(status).\(twin)"
    }

    // MARK: POST /twilio/status

    public func status(_ request: WebhookRequest) async -> WebhookAnswer {
        let form: [FormParameter]
        switch verify(request, webhook: "status") {
        case .success(let parameters): form = parameters
        case .failure(let refusal): return refusal.answer
        }
        guard let sid = form[first: "MessageSid"], let status = form[first: "MessageStatus"] ?? form[first: "SmsStatus"] else {
            return .text(400, "MessageSid and MessageStatus are required")
        }
        counters.bump(\.statusCallbacks)
        if let outbox {
            outbox.recordStatus(sid: sid, status: status, errorCode: form[first: "ErrorCode"])
        } else {
            logger.info("SMS status", metadata: ["sid": "\(sid)", "status": "\(status)"])
        }
        return WebhookAnswer(status: 204, contentType: "text/plain", body: "")
    }

    // MARK: POST /twilio/ipcommands

    public func ipCommand(_ request: WebhookRequest) async -> WebhookAnswer {
        let form: [FormParameter]
        switch verify(request, webhook: "ipcommands") {
        case .success(let parameters): form = parameters
        case .failure(let refusal): return refusal.answer
        }
        if let direction = form[first: "Direction"], direction != "from_sim" {
            logger.info("IP command webhook ignored", metadata: ["direction": "\(direction)"])
            return .text(200, "ignored: only from_sim IP commands are published")
        }
        guard let name = form[first: "SimUniqueName"], !name.isEmpty else {
            return .text(400, "SimUniqueName is missing: give the Super SIM a unique name that is its device name")
        }
        let device: DeviceName
        do { device = try DeviceName(validating: name) } catch { return .text(400, "SimUniqueName: \(error)") }
        let payloadText = form[first: "Payload"] ?? ""
        // From a SIM the payload is always base64 (PayloadType binary); text is taken as it is.
        let payload: [UInt8]
        if form[first: "PayloadType"] == "text" {
            payload = Array(payloadText.utf8)
        } else {
            guard let bytes = Data(base64Encoded: payloadText) else { return .text(400, "Payload is not base64") }
            payload = Array(bytes)
        }
        if let sid = form[first: "Sid"] {
            switch await claim(sid) {
            case .new: break
            case .repeated: return .text(200, "already received")
            case .unknown: return .text(503, "not accepted, try again: the bridge cannot record the webhook")
            }
        }
        // 200 only once the message is in the spool: Twilio does not send it again after that.
        let id: MessageID
        do throws(IntakeRefusal) {
            id = try await cellular.ingestFromIPCommand(payload, device: device)
        } catch {
            if let sid = form[first: "Sid"] { await seen.release(sid) }
            logger.error("IP command not accepted", metadata: ["device": "\(device)", "error": "\(error)"])
            switch error.reason {
            case .tooLarge: return .text(413, "not accepted: \(error)")
            case .unavailable: return .text(503, "not accepted, try again: \(error)")
            }
        }
        counters.bump(\.ipCommands)
        logger.info("IP command received", metadata: ["device": "\(device)", "bytes": "\(payload.count)", "messageId": "\(id)"])
        return .text(200, "received")
    }

    // MARK: replay protection

    enum Claim { case new, repeated, unknown }

    /// Records `sid` as acted on: `.repeated` for a retry or a replay (counted), `.unknown` when
    /// the ledger cannot be written (logged; nothing may be done then, or a replay could act).
    func claim(_ sid: String) async -> Claim {
        do {
            guard try await seen.claim(sid) else {
                counters.bump(\.duplicates)
                return .repeated
            }
            return .new
        } catch {
            logger.error("cannot record a webhook's SID; the webhook is refused", metadata: ["sid": "\(sid)", "error": "\(error)"])
            return .unknown
        }
    }

    // MARK: verification

    struct Refusal: Error {
        let answer: WebhookAnswer
    }

    /// Form body and signature checks shared by the webhooks.
    func verify(_ request: WebhookRequest, webhook: String) -> Result<[FormParameter], Refusal> {
        guard request.headers["content-type"]?.lowercased().hasPrefix(Self.formContentType) == true else {
            return .failure(Refusal(answer: .text(415, "expected \(Self.formContentType), as Twilio sends")))
        }
        let form: [FormParameter]
        do { form = try FormEncoding.decode(request.body) } catch { return .failure(Refusal(answer: .text(400, "\(error)"))) }
        guard let validator else {
            counters.bump(\.forged)
            logger.error(
                "Twilio webhook refused: TWILIO_AUTH_TOKEN is not set, so signatures cannot be checked",
                metadata: ["webhook": "\(webhook)"])
            return .failure(Refusal(answer: .text(403, "webhook signatures cannot be checked: the bridge has no Twilio auth token")))
        }
        let url = calledURL(request)
        guard let signature = request.headers["x-twilio-signature"], !signature.isEmpty else {
            counters.bump(\.forged)
            logger.warning("Twilio webhook refused: no X-Twilio-Signature", metadata: ["webhook": "\(webhook)", "url": "\(url)"])
            return .failure(Refusal(answer: .text(403, "missing X-Twilio-Signature")))
        }
        guard validator.isValid(url: url, parameters: form, signature: signature) else {
            counters.bump(\.forged)
            // The URL is logged because a wrong http.publicURL is the usual cause; the token never is.
            logger.warning(
                "Twilio webhook refused: bad X-Twilio-Signature (is http.publicURL the URL Twilio calls?)",
                metadata: ["webhook": "\(webhook)", "url": "\(url)"])
            return .failure(Refusal(answer: .text(403, "invalid X-Twilio-Signature")))
        }
        if let accountSid, let claimed = form[first: "AccountSid"], claimed != accountSid {
            counters.bump(\.forged)
            logger.warning(
                "Twilio webhook refused: it is for another Twilio account", metadata: ["webhook": "\(webhook)", "accountSid": "\(claimed)"])
            return .failure(Refusal(answer: .text(403, "the webhook is for another Twilio account")))
        }
        return .success(form)
    }

    /// The URL Twilio called: `http.publicURL` + the request target, or the Host header's.
    func calledURL(_ request: WebhookRequest) -> String {
        if !publicURL.isEmpty { return publicURL + request.target }
        let scheme = request.headers["x-forwarded-proto"] ?? "http"
        let host = request.headers["x-forwarded-host"] ?? request.headers["host"] ?? "localhost"
        return "\(scheme)://\(host)\(request.target)"
    }

    static func twiml(_ body: String) -> WebhookAnswer {
        WebhookAnswer(status: 200, contentType: TwiML.contentType, body: body)
    }
}
