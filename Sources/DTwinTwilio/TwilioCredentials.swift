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
        case incomplete(IncompleteTwilioCredentials)
    }

    public static func lookup(in environment: [String: String]) -> Lookup {
        func first(_ names: [String]) -> (name: String, value: String)? {
            names.lazy.compactMap { name in environment[name].map { (name, $0) } }.first { !$0.value.isEmpty }
        }
        switch (first(accountSidVariables), first(authTokenVariables)) {
        case (let sid?, let token?): return .found(TwilioCredentials(accountSid: sid.value, authToken: token.value))
        case (nil, nil): return .absent
        case (nil, let token?): return .incomplete(IncompleteTwilioCredentials(set: token.name, missing: accountSidVariables))
        case (let sid?, nil): return .incomplete(IncompleteTwilioCredentials(set: sid.name, missing: authTokenVariables))
        }
    }

    public var description: String { "TwilioCredentials(accountSid: \(accountSid), authToken: <redacted>)" }
}

/// One Twilio credential is in the environment and the other is not: neither real SMS nor the
/// dry run is what the person meant, so the bridge and `dtwin sms` stop and say which is missing.
public struct IncompleteTwilioCredentials: Error, Sendable, CustomStringConvertible {
    /// The variable that is set (its name only; never its value).
    public let set: String
    /// The variables any one of which would complete the pair, preferred first.
    public let missing: [String]

    public var description: String {
        let alternatives = missing.dropFirst().map { " (or \($0))" }.joined()
        return "\(set) is set but \(missing[0])\(alternatives) is not: set both to send SMS, or neither for a dry run"
    }
}
