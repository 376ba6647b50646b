import ArgumentParser
import DTwinBridge
import DTwinConfig
import DTwinContract
import DTwinInspect
import DTwinMQTT
import Foundation

struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Publish a recording made with `dtwin inspect --record` again, with its original timing.",
        discussion: """
              dtwin replay lab.jsonl                 as recorded, to the configured broker
              dtwin replay lab.jsonl --speed 10      ten times faster
              dtwin replay lab.jsonl --speed max --prefix test
                                         as fast as it goes, under test/…

            Only device traffic goes out: <prefix>/<dev>/up, status and sms, without the retain flag. \
            Commands (<prefix>/<dev>/down) and desired states (<prefix>/<dev>/state/set) would \
            reach real devices again: --include-commands sends them. The bridge's own topics \
            (<prefix>/bridge/…, each twin's <prefix>/<dev>/state and state/rejected) and topics \
            outside the tree are never sent: replay does not speak for the bridge. --keep-retain keeps retain flags (a retained \
            replay stays on the broker for every later subscriber). A warning counts what was held \
            back.

            Messages keep their QoS (QoS 2 is published as QoS 1); QoS 1 messages are acknowledged \
            by the broker before the next one goes. The whole file is checked before anything is \
            published: a bad line is reported with its number (exit 2).
            """
    )

    @OptionGroup var settings: BrokerOptions

    @Argument(help: "The recording (JSON lines).")
    var file: String

    @Option(help: ArgumentHelp("A factor (2 = twice as fast) or max (no waiting).", valueName: "X|max"))
    var speed: String = "1"

    @Option(help: ArgumentHelp("Publish under this first topic level instead (dtwin/uno1/up → PREFIX/uno1/up).", valueName: "PREFIX"))
    var prefix: String?

    @Flag(help: "Also replay commands to devices (<prefix>/<dev>/down, state/set): real devices act on them again.")
    var includeCommands = false

    @Flag(help: "Keep the retain flag of retained messages (device statuses), instead of sending them unretained.")
    var keepRetain = false

    func run() async throws {
        try await reportingFailures {
            guard let speed = ReplayPlan.Speed(argument: speed) else {
                throw CommandFailure.usage("--speed \(self.speed.debugDescription) must be a positive number or max")
            }
            if let prefix {
                do { _ = try TopicTree(prefix: prefix) } catch { throw CommandFailure.usage("--prefix: \(error)") }
            }
            let recording = try Self.read(file)
            let plan = ReplayPlan(
                recording, speed: speed, prefix: prefix, options: .init(includeCommands: includeCommands, keepRetain: keepRetain))
            plan.warnings.forEach(warn)
            let configuration = try settings.loadConfiguration()
            let client = try await ToolConnection.connect(.tool(configuration, name: "replay"))
            let start = ContinuousClock.now
            do {
                for step in plan.steps {
                    try await Task.sleep(until: start + .milliseconds(step.offsetMillis))
                    let message = step.observation
                    try await client.publish(
                        topic: message.topic, payload: message.payload, qos: message.qos == 0 ? .atMostOnce : .atLeastOnce,
                        retain: message.retain, timeout: .seconds(10))
                }
            } catch {
                await client.close()
                throw CommandFailure.runtime("\(error)")
            }
            await client.close()
            let of = plan.steps.count == recording.count ? "" : " of \(recording.count)"
            emit("replayed \(plan.steps.count)\(of) messages from \(file) in \((ContinuousClock.now - start).secondsText)")
        }
    }

    /// Every message of the recording, or a usage failure naming the first bad line.
    static func read(_ path: String) throws -> [Observation] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CommandFailure.usage("cannot read \(path.debugDescription)")
        }
        var observations: [Observation] = []
        for (index, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            guard !line.trimmingWhitespace().isEmpty else { continue }
            do {
                observations.append(try Record.parse(line))
            } catch {
                throw CommandFailure.usage("\(path) line \(index + 1): \(error)")
            }
        }
        guard !observations.isEmpty else { throw CommandFailure.usage("\(path) holds no messages") }
        return observations
    }
}
