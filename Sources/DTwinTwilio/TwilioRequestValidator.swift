import Crypto
import DTwinContract
import Foundation

/// Checks `X-Twilio-Signature` the way Twilio's helper libraries do, following twilio-python
/// (`twilio/request_validator.py`) where the libraries disagree.
///
/// The signed string is the URL Twilio called, then every POST parameter's name and value,
/// names in byte order and each name's values de-duplicated and sorted; the signature is
/// base64(HMAC-SHA1(auth token, string)). Because proxies add or drop default ports, a
/// signature is accepted for the URL with its port removed or with the scheme's default port
/// added. Requests with a JSON body sign the URL alone and carry `bodySHA256` in the query.
///
/// Known differences from other libraries, on purpose:
/// - twilio-node also tries the WHATWG-escaped and legacy forms of the URL (`'` vs `%27`);
///   twilio-python does not, and neither does this validator.
/// - twilio-python drops the user name *and* password when it removes a port from a URL with
///   credentials (`user:pass@host:1234`), so those can never validate there; this validator
///   removes only the port.
public struct TwilioRequestValidator: Sendable {
    private let key: SymmetricKey

    public init(authToken: String) {
        key = SymmetricKey(data: Array(authToken.utf8))
    }

    /// A form-encoded webhook (SMS, status callbacks, IP commands).
    public func isValid(url: String, parameters: [FormParameter], signature: String) -> Bool {
        let expected = Array(signature.utf8)
        return Self.portVariants(of: url).contains { candidate in
            Self.constantTimeEqual(Array(Self.signature(url: candidate, parameters: parameters, key: key).utf8), expected)
        }
    }

    /// A webhook with a JSON body: the URL alone is signed, and its `bodySHA256` query
    /// parameter must be the hex SHA-256 of the body. A body without that parameter is invalid.
    public func isValid(url: String, body: some Collection<UInt8>, signature: String) -> Bool {
        guard let query = url.split(separator: "?", maxSplits: 1).dropFirst().first,
            let parameters = try? FormEncoding.decode(Array(query.utf8)),
            let bodyHash = parameters[first: "bodySHA256"]
        else { return false }
        let digest = SHA256.hash(data: Array(body)).map { String(format: "%02x", $0) }.joined()
        let hashMatches = Self.constantTimeEqual(Array(digest.utf8), Array(bodyHash.utf8))
        return isValid(url: url, parameters: [], signature: signature) && hashMatches
    }

    /// The signature Twilio would send for `url` and `parameters`, exactly as given.
    public func signature(url: String, parameters: [FormParameter]) -> String {
        Self.signature(url: url, parameters: parameters, key: key)
    }

    static func signature(url: String, parameters: [FormParameter], key: SymmetricKey) -> String {
        var signed = Array(url.utf8)
        var valuesByName: [[UInt8]: Set<[UInt8]>] = [:]
        for parameter in parameters {
            valuesByName[Array(parameter.name.utf8), default: []].insert(Array(parameter.value.utf8))
        }
        // Byte order of UTF-8 is code point order, which is what Python's sorted() gives.
        for name in valuesByName.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            for value in valuesByName[name]!.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                signed += name
                signed += value
            }
        }
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: signed, using: key)
        return Data(mac).base64EncodedString()
    }

    /// The URL as given, without its port, and with the scheme's default port: the forms
    /// twilio-python tries (`remove_port`, `add_port`).
    static func portVariants(of url: String) -> [String] {
        guard let parts = URLParts(url) else { return [url] }
        if parts.port != nil {
            return [url, parts.with(port: nil)]
        }
        guard let defaultPort = parts.defaultPort else { return [url] }
        return [url, parts.with(port: defaultPort)]
    }

    /// Equal length and equal bytes, in time that depends only on the length.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}

/// `scheme://[userinfo@]host[:port]rest`, split just enough to add or remove a port.
struct URLParts {
    var scheme: Substring
    var userinfo: Substring?
    var host: Substring
    var port: Substring?
    var rest: Substring

    init?(_ url: String) {
        guard let schemeEnd = url.range(of: "://") else { return nil }
        scheme = url[..<schemeEnd.lowerBound]
        let afterScheme = url[schemeEnd.upperBound...]
        let authorityEnd = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? afterScheme.endIndex
        var authority = afterScheme[..<authorityEnd]
        rest = afterScheme[authorityEnd...]
        if let at = authority.lastIndex(of: "@") {
            userinfo = authority[..<at]
            authority = authority[authority.index(after: at)...]
        }
        // The port is what follows the last ':' that is not inside an IPv6 literal's brackets.
        if let colon = authority.lastIndex(of: ":"), !authority[colon...].contains("]") {
            host = authority[..<colon]
            port = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
    }

    var defaultPort: Substring? {
        switch scheme.lowercased() {
        case "https": "443"
        case "http": "80"
        default: nil
        }
    }

    func with(port: Substring?) -> String {
        var url = String(scheme) + "://"
        if let userinfo { url += userinfo + "@" }
        url += host
        if let port { url += ":" + port }
        return url + rest
    }
}
