import Crypto

/// `/api` needs `Authorization: Bearer $DTWIN_API_TOKEN` (DESIGN.md §6). Without the variable
/// the API is closed and says why, rather than being open by accident.
public struct APIAccess: Sendable {
    let token: [UInt8]?

    public init(token: String?) {
        self.token = token.flatMap { $0.isEmpty ? nil : Array($0.utf8) }
    }

    /// `nil` when the request may proceed, else the answer that refuses it.
    func refusal(authorization: String?) -> WebhookAnswer? {
        guard let token else {
            return .json(403, #"{"error":"the API is disabled: set DTWIN_API_TOKEN in the bridge's environment to enable it"}"#)
        }
        guard let authorization, authorization.hasPrefix("Bearer "),
            Self.constantTimeEqual(Array(authorization.dropFirst("Bearer ".count).utf8), token)
        else {
            var answer = WebhookAnswer.json(401, #"{"error":"missing or wrong bearer token"}"#)
            answer.headers["WWW-Authenticate"] = #"Bearer realm="dtwin""#
            return answer
        }
        return nil
    }

    /// Compares SHA-256 digests, so the time taken says nothing about the token's length or bytes.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        let (x, y) = (Array(SHA256.hash(data: a)), Array(SHA256.hash(data: b)))
        var difference: UInt8 = 0
        for index in x.indices { difference |= x[index] ^ y[index] }
        return difference == 0
    }
}
