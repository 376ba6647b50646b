import DTwinAWS
import DTwinConfig
import DTwinContract
import Foundation

/// What `dtwin check-config` checks: everything the bridge would refuse at start-up (exit 2),
/// found without starting anything: no file is created, no port bound, no connection made.
public enum Preflight {
    /// One problem: the key or variable to change, and why.
    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        public var key: String
        public var message: String
        public var description: String { "\(key): \(message)" }
    }

    /// Every problem found in `configuration` and `environment`; empty when the bridge can start.
    public static func problems(_ configuration: DTwinConfiguration, environment: [String: String]) -> [Problem] {
        var problems: [Problem] = []
        do { _ = try BridgeApplication.twilioCredentials(environment) } catch {
            problems.append(Problem(key: "environment", message: "\(error)"))
        }
        do { _ = try BridgeApplication.addressBook(configuration) } catch let error as ConfigurationError {
            problems.append(Problem(key: error.key, message: error.message))
        } catch {
            problems.append(Problem(key: "devices", message: "\(error)"))
        }
        let needsAWS =
            configuration.store.kind == .dynamodb || configuration.upstream.mode == .lambda
            || (configuration.upstream.mode == .apigw && configuration.upstream.auth == .iam)
        if needsAWS {
            do throws(AWSError) {
                _ = try AWSEnvironment.resolve(environment).requiredCredentials()
            } catch {
                let key = configuration.store.kind == .dynamodb ? "store.kind" : "upstream.mode"
                problems.append(Problem(key: key, message: "needs AWS credentials: \(error)"))
            }
        }
        if configuration.store.kind == .sqlite && configuration.upstream.mode == .local,
            let problem = writableFolder(for: configuration.store.path, isFolder: false, key: "store.path")
        {
            problems.append(problem)
        }
        if configuration.spool.enabled, let problem = writableFolder(for: configuration.spoolFolder, isFolder: true, key: "spool.path") {
            problems.append(problem)
        }
        if configuration.broker.tls, !configuration.ca.isEmpty, !FileManager.default.isReadableFile(atPath: configuration.ca) {
            problems.append(Problem(key: "ca", message: "\(configuration.ca.debugDescription) cannot be read"))
        }
        return problems
    }

    /// A problem unless this user may write where `path` goes: the folder that holds the file
    /// `path`, or the folder `path` itself (`isFolder`), which start-up makes when its parent
    /// exists.
    static func writableFolder(for path: String, isFolder: Bool, key: String) -> Problem? {
        let url = URL(fileURLWithPath: path.isEmpty ? "." : path).standardizedFileURL
        var folder = isFolder ? url : url.deletingLastPathComponent()
        if isFolder && !FileManager.default.fileExists(atPath: folder.path) { folder = folder.deletingLastPathComponent() }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            return Problem(key: key, message: "the folder \(folder.path.debugDescription) does not exist")
        }
        guard FileManager.default.isWritableFile(atPath: folder.path) else {
            return Problem(key: key, message: "the folder \(folder.path.debugDescription) is not writable by this user")
        }
        return nil
    }
}
