import ArgumentParser
import DTwinApp
import DTwinConfig
import DTwinContract
import Foundation
import Logging

/// `--config`, for the commands that read the configuration but never touch the broker.
struct ConfigurationOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Configuration file (default: dtwin.yaml if present, or $DTWIN_CONFIG).", valueName: "FILE"))
    var config: String?

    /// Loads the configuration; prints its warnings.
    func loadConfiguration() throws -> DTwinConfiguration { try load().configuration }

    /// The configuration with where it came from; prints its warnings.
    func load() throws -> ConfigurationLoader.Loaded {
        do {
            let loaded = try ConfigurationLoader.load(path: config, environment: ProcessInfo.processInfo.environment)
            loaded.warnings.forEach(warn)
            return loaded
        } catch {
            throw CommandFailure.usage("\(error)")
        }
    }
}

/// `--config`, `--broker` and `--ca`, for the commands that connect to the broker.
struct BrokerOptions: ParsableArguments {
    @OptionGroup var file: ConfigurationOption

    @Option(name: .long, help: ArgumentHelp("Broker URL, overriding the configuration: mqtt://[user:pass@]host:port or mqtts://…", valueName: "URL"))
    var broker: String?

    @Option(name: .long, help: ArgumentHelp("CA certificate file for mqtts:// brokers (overrides `ca`).", valueName: "FILE"))
    var ca: String?

    /// Loads the configuration and applies the command-line overrides; prints warnings.
    func loadConfiguration() throws -> DTwinConfiguration { try load().configuration }

    /// The configuration with the command-line overrides applied (and named in `overrides`).
    func load() throws -> ConfigurationLoader.Loaded {
        var loaded = try file.load()
        if let broker {
            do {
                loaded.configuration.broker = try BrokerURL(parsing: broker)
            } catch {
                throw CommandFailure.usage("\(ConfigurationError(key: "--broker", message: error.reason))")
            }
            loaded.overrides.append("--broker")
        }
        if let ca {
            loaded.configuration.ca = ca
            loaded.overrides.append("--ca")
        }
        return loaded
    }
}

/// A failure reported as one line on standard error, with an exit code; never a stack trace.
enum CommandFailure: Error, CustomStringConvertible {
    /// Bad arguments or configuration: exit 2.
    case usage(String)
    /// The broker, the store or the upstream failed: exit 1.
    case runtime(String)

    var description: String {
        switch self {
        case .usage(let message), .runtime(let message): return message
        }
    }

    var exitCode: ExitCode {
        switch self {
        case .usage: return ExitCode(2)
        case .runtime: return ExitCode(1)
        }
    }
}

/// A device name from the command line, or a usage failure (exit 2) saying what is wrong with it.
func validDeviceName(_ text: String) throws -> DeviceName {
    do { return try DeviceName(validating: text) } catch { throw CommandFailure.usage("\(error)") }
}

/// One `dtwin: warning: …` line on standard error: something the person should know that does
/// not stop the command.
func warn(_ message: String) {
    FileHandle.standardError.write(Data("dtwin: warning: \(message)\n".utf8))
}

/// Runs a command body, turning ``CommandFailure`` into its message and exit code.
func reportingFailures(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let failure as CommandFailure {
        FileHandle.standardError.write(Data("dtwin: \(failure.description)\n".utf8))
        throw failure.exitCode
    }
}

/// Logs to standard error at `level` (the bridge's log is its standard error stream), as text
/// lines or, with `logFormat: json`, JSON lines; either way through ``SanitizingLogHandler``, as
/// log lines quote what devices and strangers send.
func bootstrapLogging(level: Logger.Level, format: DTwinConfiguration.LogFormat = .text) -> Logger {
    LoggingSystem.bootstrap { label in
        switch format {
        case .text:
            var handler = SanitizingLogHandler(StreamLogHandler.standardError(label: label))
            handler.logLevel = level
            return handler
        case .json:
            var handler = SanitizingLogHandler(JSONLogHandler(label: label))
            handler.logLevel = level
            return handler
        }
    }
    return Logger(label: "dtwin")
}

extension DTwinConfiguration.LogLevel {
    var loggerLevel: Logger.Level { Logger.Level(rawValue: rawValue) ?? .info }
}

/// A duration option (`1.5s`, `250ms`, `2m`), parsed like durations in the configuration.
struct DurationArgument: ExpressibleByArgument {
    let duration: Duration
    /// As written, so `--help` shows a default as `5s`, the way it is typed.
    let text: String

    init?(argument: String) {
        guard let duration = ValueParsers.duration(argument) else { return nil }
        self.duration = duration
        self.text = argument
    }

    var defaultValueDescription: String { text }
}
