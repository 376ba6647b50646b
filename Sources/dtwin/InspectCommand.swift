import ArgumentParser
import DTwinBridge
import DTwinConfig
import DTwinContract
import DTwinInspect
import DTwinMQTT
import Foundation
import Synchronization

struct InspectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Watch the broker's traffic, decoded the way the bridge reads it.",
        discussion: """
            Each line: time (UTC), topic, QoS and R for retained, the payload (text, or hex/base64 for \
            binary), and what dtwin makes of it: a reading and its value, an awake event, a command \
            for a device, a status, an SMS request, a dead letter and its reason, a bad device name.

              dtwin inspect                          everything under dtwin/#
              dtwin inspect 'dtwin/uno1/#' --json | jq .decoded.value
              dtwin inspect --as-event --count 1     the next cloud event, as the bridge builds it
              dtwin inspect --stats                  a live table per device
              dtwin inspect --retained-only          the retained statuses, then exit
              dtwin inspect --record lab.jsonl       keep it all for dtwin replay

            --as-event builds the event the way the bridge does: the same shape, device, topic and \
            payload. MessageId and ReceivedAt are this tool's own (the bridge picks its own id and \
            time for the same message); 'dtwin event' with --message-id and --received-at remakes \
            the bridge's exact event from a stored item.

            Exit codes: 0 done (--count reached, --timeout passed, --retained-only finished, Ctrl-C); \
            1 the broker cannot be reached or refuses (one line says why); 2 bad arguments; \
            3 --timeout passed before --count messages arrived.
            """
    )

    enum Color: String, ExpressibleByArgument, CaseIterable {
        case auto, always, never
    }

    @OptionGroup var settings: BrokerOptions

    @Argument(help: ArgumentHelp("Topic filters (MQTT wildcards + and #). Default: <prefix>/#.", valueName: "FILTER"))
    var filters: [String] = []

    @Flag(help: "One JSON object per line: topic, qos, retain, payload (or payloadBase64), decoded fields.")
    var json = false

    @Flag(help: "Print the cloud event for each device message on <prefix>/<dev>/up (MessageId and ReceivedAt are this tool's own).")
    var asEvent = false

    @Flag(help: "A live table per device (messages, rate, last value, last seen) instead of lines.")
    var stats = false

    @Flag(help: "Show the retained messages only, then exit (at the first live message, or after 1 s of quiet).")
    var retainedOnly = false

    @Option(help: "Exit after this many messages (with --as-event: events).")
    var count: Int?

    @Option(help: ArgumentHelp("Exit after this long (e.g. 30s, 2m).", valueName: "DURATION"))
    var timeout: DurationArgument?

    @Option(help: ArgumentHelp("Also write every message, with its time, to FILE as JSON lines (for dtwin replay).", valueName: "FILE"))
    var record: String?

    @Option(help: "Colours: auto (on a terminal), always, never.")
    var color: Color = .auto

    func validate() throws {
        if [json, asEvent, stats].filter({ $0 }).count > 1 { throw ValidationError("choose one of --json, --as-event and --stats") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        for filter in filters where !Self.isValidFilter(filter) {
            throw ValidationError("\(filter.debugDescription) is not an MQTT topic filter (+ and # stand alone in a level; # only last)")
        }
    }

    static func isValidFilter(_ filter: String) -> Bool {
        guard !filter.isEmpty, filter.utf8.count <= 65535, !filter.contains("\u{0}") else { return false }
        let levels = filter.split(separator: "/", omittingEmptySubsequences: false)
        for (index, level) in levels.enumerated() {
            if level.contains("#") && (level != "#" || index != levels.count - 1) { return false }
            if level.contains("+") && level != "+" { return false }
        }
        return true
    }

    /// How the run ended.
    enum Ending: Sendable {
        case done, timedOut
    }

    func run() async throws {
        try await reportingFailures {
            let configuration = try settings.loadConfiguration()
            let tree = configuration.topicPrefix
            let recorder = try record.map(Recorder.init(path:))
            var connection = MQTTClientConfiguration.tool(configuration, name: "inspect")
            // inspect only watches. MQTT 5 would deliver a message once per matching filter
            // (`dtwin/# dtwin/uno1/up` would show uno1's readings twice); 3.1.1 shows it once.
            connection.protocolVersion = .v311
            let client = try await ToolConnection.connect(connection)
            let subscriptions = filters.isEmpty ? [tree.everything] : filters
            do {
                try await client.subscribe(subscriptions)
            } catch {
                await client.close()
                throw CommandFailure.runtime("\(error)")
            }
            let colors = color == .always || (color == .auto && stdoutWantsColor)
            let view = View(mode: json ? .json : asEvent ? .event : stats ? .stats : .lines, tree: tree, colors: colors)
            let live = stats && colors
            let ending = await watch(client, view: view, recorder: recorder, live: live)
            await client.close()
            // Live, the last table goes below the one on the screen (after the ^C).
            if stats { emit((live ? "\n" : "") + view.statsTable(live: false)) }
            if ending == .timedOut, let count {
                FileHandle.standardError.write(Data("dtwin: \(view.shown) of \(count) messages before the timeout\n".utf8))
                throw ExitCode(3)
            }
        }
    }

    /// Shows messages until one of the endings.
    func watch(_ client: MQTTClient, view: View, recorder: Recorder?, live: Bool) async -> Ending {
        let count = self.count
        let retainedOnly = self.retainedOnly
        let lastMessage = SharedNumber(Timestamp.nowMillis())
        return await withTaskGroup(of: Ending.self) { group in
            group.addTask {
                for await message in client.messages {
                    let now = Timestamp.nowMillis()
                    lastMessage.set(now)
                    if retainedOnly && !message.retain { return .done }
                    let observation = Observation(
                        atMillis: now, topic: message.topic, qos: Int(message.qos.rawValue), retain: message.retain, payload: message.payload)
                    recorder?.write(observation, tree: view.tree)
                    let shown = view.show(observation)
                    if let count, shown >= count { return .done }
                }
                return .done
            }
            if let timeout {
                group.addTask {
                    try? await Task.sleep(for: timeout.duration)
                    return .timedOut
                }
            }
            if retainedOnly {
                // Retained messages come right after the subscription is granted; a second of
                // quiet means there are no more.
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(100))
                        if Timestamp.nowMillis() - lastMessage.current > 1000 { return .done }
                    }
                    return .done
                }
            }
            if live {
                group.addTask {
                    while !Task.isCancelled {
                        emit("\u{1B}[H\u{1B}[2J" + view.statsTable(live: true))
                        try? await Task.sleep(for: .seconds(1))
                    }
                    return .done
                }
            }
            group.addTask {
                await interrupted()
                return .done
            }
            let ending = await group.next() ?? .done
            group.cancelAll()
            return ending
        }
    }
}

extension InspectCommand {
    /// What is shown, and the state behind it (the formatter's column widths, the statistics).
    final class View: Sendable {
        enum Mode: Sendable { case lines, json, event, stats }

        struct State {
            var formatter: LineFormatter
            var stats = DeviceStats()
            var shown = 0
            var random = SplitMix64()
        }

        let mode: Mode
        let tree: TopicTree
        let state: Mutex<State>

        init(mode: Mode, tree: TopicTree, colors: Bool) {
            self.mode = mode
            self.tree = tree
            state = Mutex(State(formatter: LineFormatter(colors: colors)))
        }

        var shown: Int { state.withLock { $0.shown } }

        /// Shows one message; returns how many have been shown.
        func show(_ observation: Observation) -> Int {
            let meaning = Meaning.of(observation, in: tree)
            let (line, shown) = state.withLock { state -> (String?, Int) in
                let line: String?
                switch mode {
                case .lines:
                    line = state.formatter.line(observation, meaning)
                case .json:
                    line = Record(observation, meaning: meaning).line
                case .event:
                    line = Self.event(observation, meaning, tree: tree, random: &state.random)
                case .stats:
                    state.stats.add(observation, meaning)
                    line = nil
                }
                if line != nil || mode == .stats { state.shown += 1 }
                return (line, state.shown)
            }
            if let line { emit(line) }
            return shown
        }

        /// The proxy event for a message on `<prefix>/<dev>/up`; `nil` for anything else.
        static func event(_ observation: Observation, _ meaning: Meaning, tree: TopicTree, random: inout SplitMix64) -> String? {
            guard let device = meaning.device, observation.topic == tree.up(device) else { return nil }
            let message = DeviceMessage(
                id: MessageID(millis: observation.atMillis, using: &random), device: device, topic: observation.topic,
                payload: observation.payload, receivedAtMillis: observation.atMillis)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return (try? encoder.encode(IoTEvent(message: message).proxyEvent())).map { String(decoding: $0, as: UTF8.self) }
        }

        func statsTable(live: Bool) -> String {
            let now = Timestamp.nowMillis()
            return state.withLock { state in
                state.stats.prune(now: now)
                let table = state.stats.rows.isEmpty ? "(no device messages yet)" : state.stats.table(now: now)
                return live ? "dtwin inspect --stats: \(state.shown) messages (Ctrl-C to stop)\n\n" + table : table
            }
        }
    }

    /// `--record FILE`: one JSON line per message, written as it arrives.
    final class Recorder: Sendable {
        let handle: FileHandle

        init(path: String) throws {
            guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
                throw CommandFailure.runtime("cannot write the recording \(path.debugDescription) (--record)")
            }
            self.handle = handle
        }

        func write(_ observation: Observation, tree: TopicTree) {
            handle.write(Data((Record(observation, meaning: Meaning.of(observation, in: tree)).line + "\n").utf8))
        }
    }
}
