import DTwinContract
import Foundation

/// Where an AWS service is reached: AWS's own endpoint for the region, or an override (a
/// local compatible server in tests), and the `Host` value SigV4 signs.
public struct AWSEndpoint: Sendable, Equatable {
    /// `https://lambda.us-west-2.amazonaws.com`, without a trailing slash.
    public let url: String
    /// `lambda.us-west-2.amazonaws.com`, or `127.0.0.1:4566` when a port is given.
    public let host: String

    /// `override` empty: AWS's own. `key` names the setting in the error for a bad override.
    public init(service: String, region: String, override: String, key: String) throws(AWSError) {
        let url = override.isEmpty ? "https://\(service).\(region).amazonaws.com" : override.trimmingTrailingSlashes()
        guard let parsed = URL(string: url), let host = parsed.host, ["http", "https"].contains(parsed.scheme ?? "") else {
            throw AWSError(.validation, "\(key) \(url.debugDescription) is not an http(s) URL")
        }
        self.url = url
        self.host = parsed.port.map { "\(host):\($0)" } ?? host
    }
}
