/// A Twilio account SID and auth token, from the environment only (never the configuration
/// file): `TWILIO_ACCOUNT_SID` / `TWILIO_AUTH_TOKEN`, or the seed Lambda's `acct_id_env` /
/// `acct_token_env`. The token never appears in a description, log or error.
public struct TwilioCredentials: Sendable, CustomStringConvertible {
    public let accountSid: String
    public let authToken: String

    public init(accountSid: String, authToken: String) {
        self.accountSid = accountSid
        self.authToken = authToken
    }

    /// The variables read, in order of preference for each value.
    public static let accountSidVariables = ["TWILIO_ACCOUNT_SID", "acct_id_env"]
    public static let authTokenVariables = ["TWILIO_AUTH_TOKEN", "acct_token_env"]

    /// What the environment holds.
    public enum Lookup: Sendable {
        case found(TwilioCredentials)
        /// Neither value is set: Twilio runs in dry-run.
        case absent
        /// Only one of the two is set: a configuration mistake worth saying out loud.
        case incomplete(missing: String)
    }

    public static func lookup(in environment: [String: String]) -> Lookup {
        func first(_ names: [String]) -> String? {
            names.lazy.compactMap { environment[$0] }.first { !$0.isEmpty }
        }
        switch (first(accountSidVariables), first(authTokenVariables)) {
        case (let sid?, let token?): return .found(TwilioCredentials(accountSid: sid, authToken: token))
        case (nil, nil): return .absent
        case (nil, _): return .incomplete(missing: accountSidVariables.joined(separator: " or "))
        case (_, nil): return .incomplete(missing: authTokenVariables.joined(separator: " or "))
        }
    }

    public var description: String { "TwilioCredentials(accountSid: \(accountSid), authToken: <redacted>)" }
}
