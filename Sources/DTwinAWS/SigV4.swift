import Crypto
import DTwinContract
import Foundation

/// AWS Signature Version 4 (header form), as DynamoDB and Lambda take it.
///
/// Pure: the time is given, so the official test suite (`../shared/testdata/sigv4`) checks
/// every step (canonical request, string to sign, `Authorization`).
public struct SigV4: Sendable {
    public let credentials: AWSCredentials
    public let region: String
    public let service: String

    public init(credentials: AWSCredentials, region: String, service: String) {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// A request as the signer sees it: the path as sent on the wire (percent-encoded), the
    /// query as decoded pairs, headers in order (repeats allowed), the body's bytes.
    public struct Request: Sendable {
        public var method: String
        public var path: String
        public var query: [(String, String)]
        public var headers: [(String, String)]
        public var body: [UInt8]

        public init(method: String, path: String, query: [(String, String)] = [], headers: [(String, String)], body: [UInt8] = []) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
            self.body = body
        }
    }

    /// The headers to add to `request` so AWS accepts it at `date`: `X-Amz-Date`,
    /// `X-Amz-Security-Token` (with temporary credentials) and `Authorization`. `request`
    /// must carry its `Host` header.
    public func signingHeaders(for request: Request, at date: Date) -> [(String, String)] {
        let amzDate = Self.amzDate(date)
        var signed = request
        var added = [("X-Amz-Date", amzDate)]
        if let token = credentials.sessionToken { added.append(("X-Amz-Security-Token", token)) }
        signed.headers += added
        return added + [("Authorization", authorization(for: signed, amzDate: amzDate))]
    }

    // MARK: the steps, each checked by the test suite

    /// Task 1: the canonical request.
    public func canonicalRequest(for request: Request) -> String {
        canonicalForm(of: request).request
    }

    /// The canonical request, and the signed headers' names (`host;x-amz-date`) it lists.
    func canonicalForm(of request: Request) -> (request: String, signedHeaders: String) {
        let headers = Self.canonicalHeaders(request.headers)
        let signedHeaders = headers.map(\.name).joined(separator: ";")
        let canonical = [
            request.method.uppercased(),
            Self.canonicalPath(request.path),
            Self.canonicalQuery(request.query),
            headers.map { "\($0.name):\($0.value)\n" }.joined(),
            signedHeaders,
            Self.hex(SHA256.hash(data: request.body)),
        ].joined(separator: "\n")
        return (canonical, signedHeaders)
    }

    /// Task 2: the string to sign.
    public func stringToSign(canonicalRequest: String, amzDate: String) -> String {
        [
            "AWS4-HMAC-SHA256", amzDate, scope(amzDate: amzDate),
            Self.hex(SHA256.hash(data: Array(canonicalRequest.utf8))),
        ].joined(separator: "\n")
    }

    /// Tasks 3 and 4: the signature, in the `Authorization` header's value. The request's
    /// headers must already include `X-Amz-Date` (and the token, if it is to be signed).
    public func authorization(for request: Request, amzDate: String) -> String {
        let (canonical, signedHeaders) = canonicalForm(of: request)
        let toSign = stringToSign(canonicalRequest: canonical, amzDate: amzDate)
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Array(toSign.utf8), using: signingKey(amzDate: amzDate)))
        return "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyId)/\(scope(amzDate: amzDate)), "
            + "SignedHeaders=\(signedHeaders), Signature=\(signature)"
    }

    func scope(amzDate: String) -> String {
        "\(amzDate.prefix(8))/\(region)/\(service)/aws4_request"
    }

    func signingKey(amzDate: String) -> SymmetricKey {
        func hmac(_ key: SymmetricKey, _ text: some StringProtocol) -> SymmetricKey {
            SymmetricKey(data: HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: key))
        }
        let secret = SymmetricKey(data: Array("AWS4\(credentials.secretAccessKey)".utf8))
        return hmac(hmac(hmac(hmac(secret, amzDate.prefix(8)), region), service), "aws4_request")
    }

    // MARK: canonical forms

    /// Dot segments and empty segments removed (every service but S3 wants this), then each
    /// segment percent-encoded again: AWS signs the encoding of the path as sent.
    static func canonicalPath(_ path: String) -> String {
        var segments: [Substring] = []
        for segment in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch segment {
            case ".": continue
            case "..": _ = segments.popLast()
            default: segments.append(segment)
            }
        }
        var canonical = "/" + segments.map { FormEncoding.escape(String($0)) }.joined(separator: "/")
        if path.hasSuffix("/") && !segments.isEmpty { canonical += "/" }
        return canonical
    }

    /// Pairs encoded (RFC 3986 unreserved kept) and sorted by name, then value.
    static func canonicalQuery(_ query: [(String, String)]) -> String {
        query.map { (FormEncoding.escape($0.0), FormEncoding.escape($0.1)) }
            .sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
    }

    /// Lower-case names, sorted; values trimmed with inner runs of spaces made one; a repeated
    /// name's values joined by commas in the order given.
    static func canonicalHeaders(_ headers: [(String, String)]) -> [(name: String, value: String)] {
        var values: [String: [String]] = [:]
        for (name, value) in headers {
            let collapsed = value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            values[name.lowercased(), default: []].append(String(collapsed.trimmingWhitespace()))
        }
        return values.keys.sorted().map { ($0, values[$0]!.joined(separator: ",")) }
    }

    /// `20150830T123600Z`: the project's ISO-8601 form (`2015-08-30T12:36:00.000Z`) without
    /// separators and milliseconds.
    public static func amzDate(_ date: Date) -> String {
        let iso = Timestamp.iso8601(millis: Int64((date.timeIntervalSince1970 * 1000).rounded(.down)))
        return String(iso.prefix(19).filter { $0 != "-" && $0 != ":" }) + "Z"
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
