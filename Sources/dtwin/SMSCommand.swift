import ArgumentParser
import AsyncHTTPClient
import DTwinConfig
import DTwinContract
import DTwinTwilio
import Foundation

struct SMSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sms",
        abstract: "Send one SMS through the configured Twilio account (or show the dry run).",
        discussion: """
            Example: dtwin sms --to +12065550100 "uno1 light low: 80"

            Sent from twilio.from (or --from) through twilio.apiBase, with the account in \
            TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or the seed's acct_id_env and acct_token_env). \
            Without them it prints what it would send and sends nothing. \
            This SMS is not counted in a running bridge's twilio.smsPerHour budget.

            Exits 0 when Twilio accepted the SMS (or on a dry run), 1 when Twilio refused it or could \
            not be reached (Twilio's error code and message are printed), 2 for a bad number, an \
            empty or over-long text, or half-set credentials.
            """
    )

    @OptionGroup var settings: ConfigurationOption

    @Option(help: ArgumentHelp("The recipient, in E.164 form.", valueName: "+NUMBER"))
    var to: String

    @Option(help: ArgumentHelp("The Twilio number to send from (default: twilio.from).", valueName: "+NUMBER"))
    var from: String?

    @Argument(help: "The text (up to 1600 characters).")
    var text: String

    func run() async throws {
        try await reportingFailures {
            let recipient = try phoneNumber(to, option: "--to")
            let sender = try from.map { try phoneNumber($0, option: "--from") }
            guard !text.isEmpty, text.count <= 1600 else {
                throw CommandFailure.usage("the text must be 1 to 1600 characters (it is \(text.count))")
            }
            let configuration = try settings.loadConfiguration()
            let credentials: TwilioCredentials?
            switch TwilioCredentials.lookup(in: ProcessInfo.processInfo.environment) {
            case .found(let found): credentials = found
            case .absent: credentials = nil
            case .incomplete(let half): throw CommandFailure.usage("\(half)")
            }
            // twilio.from is checked by the same phone rule when the configuration loads.
            let from = sender?.description ?? configuration.twilio.from
            guard let credentials else {
                let shownSender = from.isEmpty ? "(no sender yet: set twilio.from or pass --from)" : from
                print("dry run (TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set): would send from \(shownSender) to \(recipient): \(text)")
                return
            }
            guard !from.isEmpty else {
                throw CommandFailure.usage("no sender: set twilio.from (DTWIN_TWILIO_FROM) to your Twilio number, or pass --from")
            }
            let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
            let client = TwilioClient(
                credentials: credentials, apiBase: configuration.twilio.apiBase, superSimBase: configuration.twilio.superSimBase,
                client: http)
            let result: Result<TwilioClient.Accepted, TwilioError>
            do throws(TwilioError) {
                result = .success(try await client.sendMessage(to: recipient, from: from, body: text, statusCallback: nil))
            } catch {
                result = .failure(error)
            }
            try? await http.shutdown()
            switch result {
            case .success(let accepted):
                print("accepted by Twilio: \(accepted.sid) (\(accepted.status))")
            case .failure(let error):
                throw CommandFailure.runtime("SMS not sent: \(error)")
            }
        }
    }

    /// `--to` and `--from` follow the one phone-number rule (``PhoneNumber``).
    private func phoneNumber(_ text: String, option: String) throws -> PhoneNumber {
        guard let number = PhoneNumber(text) else {
            throw CommandFailure.usage(
                "\(option) \(text.debugDescription) is not a phone number: write it as + and the country code, like +12065550100")
        }
        return number
    }
}
