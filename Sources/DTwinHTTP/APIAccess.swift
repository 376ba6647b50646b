import Crypto

/// `/api` needs `Authorization: Bearer $DTWIN_API_TOKEN` (README: "The HTTP API"). Without the variable
/// the API is closed and says why, rather than being open by accident.
public struct APIAccess: Sendable {
    /// The token's SHA-256: requests are compared digest to digest, with swift-crypto's
    /// constant-time `==`, so timing says nothing about the token's length or bytes.
    let tokenDigest: SHA256Digest?

    public init(token: String?) {
        tokenDigest = token.flatMap { $0.isEmpty ? nil : SHA256.hash(data: Array($0.utf8)) }
    }

    /// Whether the API is open at all (`DTWIN_API_TOKEN` is set).
    var isEnabled: Bool { tokenDigest != nil }

    /// `nil` when the request may proceed, else the answer that refuses it.
    func refusal(authorization: String?) -> WebhookAnswer? {
        guard let tokenDigest else {
            return .json(403, #"{"error":"the API is disabled: set DTWIN_API_TOKEN in the bridge's environment to enable it"}"# + "\n")
        }
        guard let authorization, authorization.hasPrefix("Bearer "),
            SHA256.hash(data: Array(authorization.dropFirst("Bearer ".count).utf8)) == tokenDigest
        else {
            var answer = WebhookAnswer.json(401, #"{"error":"missing or wrong bearer token"}"# + "\n")
            answer.headers["WWW-Authenticate"] = #"Bearer realm="dtwin""#
            return answer
        }
        return nil
    }
}
