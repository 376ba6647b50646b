import Crypto
import Foundation

/// Signs webhook requests the way Twilio does, for tests that play Twilio. Written from
/// Twilio's documentation ("Webhooks security"), separately from dtwin's validator, so a test
/// never checks a signature with the code that made it; its own test runs it against the
/// official libraries' vectors.
public enum TwilioWebhookSigner {
    /// base64(HMAC-SHA1(token, url + each name and value, sorted by name then value)).
    public static func signature(url: String, parameters: [(String, String)], authToken: String) -> String {
        let sorted = parameters.sorted { $0.0 == $1.0 ? $0.1 < $1.1 : $0.0 < $1.0 }
        let text = url + sorted.map { $0.0 + $0.1 }.joined()
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Data(text.utf8), using: SymmetricKey(data: Data(authToken.utf8)))
        return Data(mac).base64EncodedString()
    }

    /// A form body for `parameters`, encoded with Foundation (alphanumerics kept, the rest %XX).
    public static func formBody(_ parameters: [(String, String)]) -> String {
        parameters.map { escape($0.0) + "=" + escape($0.1) }.joined(separator: "&")
    }

    static func escape(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: Unicode.Scalar(0)..<Unicode.Scalar(128)))
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
