import DTwinContract
import Foundation

/// An access key pair, with a session token for temporary credentials. Its description never
/// shows the secret or the token.
public struct AWSCredentials: Sendable, Equatable, CustomStringConvertible {
    public var accessKeyId: String
    public var secretAccessKey: String
    public var sessionToken: String?

    public init(accessKeyId: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyId = accessKeyId
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    public var description: String {
        "AWS credentials \(accessKeyId)\(sessionToken == nil ? "" : " (temporary)")"
    }
}

/// Where AWS settings come from, the way the AWS CLI and SDKs look for them: the environment
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` /
/// `AWS_DEFAULT_REGION`), then the profile `AWS_PROFILE` (default `default`) in
/// `~/.aws/credentials` (`AWS_SHARED_CREDENTIALS_FILE`) and `~/.aws/config` (`AWS_CONFIG_FILE`).
public struct AWSEnvironment: Sendable {
    public var credentials: AWSCredentials?
    public var region: String?
    /// Where the credentials were found, for messages (never the values).
    public var credentialsSource: String

    /// The credentials, for what cannot run without them (DynamoDB, SigV4 signing, Lambda).
    public func requiredCredentials() throws(AWSError) -> AWSCredentials {
        guard let credentials else { throw AWSError.noCredentials }
        return credentials
    }

    /// Looks everything up; `readFile` returns a file's text or `nil` (tests give their own).
    public static func resolve(
        _ environment: [String: String], readFile: (String) -> String? = { try? String(contentsOfFile: $0, encoding: .utf8) }
    ) throws(AWSError) -> AWSEnvironment {
        let profile = environment["AWS_PROFILE"].nonEmpty ?? "default"
        let home = environment["HOME"] ?? NSHomeDirectory()
        let credentialsPath = environment["AWS_SHARED_CREDENTIALS_FILE"] ?? "\(home)/.aws/credentials"
        let configPath = environment["AWS_CONFIG_FILE"] ?? "\(home)/.aws/config"
        let credentialsFile = readFile(credentialsPath).map(INIFile.parse) ?? [:]
        let configFile = readFile(configPath).map(INIFile.parse) ?? [:]
        // In the config file every profile but `default` is written `[profile NAME]`.
        let configSection = configFile[profile == "default" ? "default" : "profile \(profile)"] ?? configFile[profile] ?? [:]
        let fileSection = credentialsFile[profile] ?? [:]

        var result = AWSEnvironment(credentials: nil, region: nil, credentialsSource: "none")
        result.region =
            [environment["AWS_REGION"], environment["AWS_DEFAULT_REGION"], configSection["region"]]
            .compactMap(\.nonEmpty).first

        let id = environment["AWS_ACCESS_KEY_ID"] ?? ""
        let secret = environment["AWS_SECRET_ACCESS_KEY"] ?? ""
        switch (id.isEmpty, secret.isEmpty) {
        case (false, false):
            result.credentials = AWSCredentials(
                accessKeyId: id, secretAccessKey: secret, sessionToken: environment["AWS_SESSION_TOKEN"].nonEmpty)
            result.credentialsSource = "environment"
            return result
        case (false, true):
            throw AWSError(.badCredentials, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")
        case (true, false):
            throw AWSError(.badCredentials, "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not")
        case (true, true):
            break
        }
        // The credentials file first, then the config file (which may hold keys too).
        for (section, path) in [(fileSection, credentialsPath), (configSection, configPath)] {
            let id = section["aws_access_key_id"] ?? ""
            let secret = section["aws_secret_access_key"] ?? ""
            if id.isEmpty && secret.isEmpty { continue }
            guard !id.isEmpty, !secret.isEmpty else {
                throw AWSError(
                    .badCredentials, "profile \(profile.debugDescription) in \(path) needs both aws_access_key_id and aws_secret_access_key")
            }
            result.credentials = AWSCredentials(
                accessKeyId: id, secretAccessKey: secret, sessionToken: section["aws_session_token"].nonEmpty)
            result.credentialsSource = "profile \(profile) in \(path)"
            return result
        }
        if environment["AWS_PROFILE"] != nil && credentialsFile[profile] == nil && configSection.isEmpty {
            throw AWSError(.badCredentials, "AWS_PROFILE names \(profile.debugDescription), which is in neither \(credentialsPath) nor \(configPath)")
        }
        return result
    }
}

/// The AWS CLI's INI files: `[section]` headers, `key = value` lines, `#` and `;` comments.
enum INIFile {
    static func parse(_ text: String) -> [String: [String: String]] {
        var sections: [String: [String: String]] = [:]
        var current: String?
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                let name = line.dropFirst().dropLast().trimmingWhitespace()
                current = String(name)
                sections[String(name), default: [:]].merge([:]) { $1 }
                continue
            }
            guard let current, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingWhitespace().lowercased()
            let value = line[line.index(after: equals)...].trimmingWhitespace()
            sections[current, default: [:]][key] = String(value)
        }
        return sections
    }
}

/// Why an AWS call failed, in words that say what to do; never shows a secret.
public struct AWSError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// Missing, half-set or refused credentials.
        case badCredentials
        /// The table, index or function does not exist.
        case notFound
        /// The request was refused as invalid: retrying will not help.
        case validation
        /// A conditional write found its condition false (DynamoDB `ConditionalCheckFailedException`).
        case conditionFailed
        /// Throttled or a server error: worth retrying.
        case retryable
        /// No answer (connection refused, timeout).
        case transport
        case other
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

extension AWSError {
    /// No credentials anywhere the standard AWS lookup looks.
    public static let noCredentials = AWSError(
        .badCredentials, "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with ~/.aws/credentials")
}
