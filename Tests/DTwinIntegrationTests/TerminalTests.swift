import DTwinMQTT
import DTwinTestSupport
import Foundation
import Testing

/// `dtwin inspect` in a real terminal: tmux (from Debian, installed by scripts/test.sh) runs it
/// in a pane; the test types into the pane and reads it back as a person would see it.
@Suite struct TerminalTests {
    /// One tmux server of the test's own (`-L`), so nobody's tmux is touched.
    final class Terminal: Sendable {
        let socket = "dtwin-test-\(UUID().uuidString.prefix(8))"
        let session = "inspect"

        init(_ command: [String], width: Int = 180, height: Int = 30) async throws {
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux") else {
                throw TestSupportError("tmux is not installed: scripts/test.sh installs it (apt-get install tmux)")
            }
            // The shell survives Ctrl-C (a trap, which the program does not inherit) and prints
            // the program's exit status; the pane stays to be read.
            let program = command.map { "'\($0)'" }.joined(separator: " ")
            let line = "trap 'true' INT; \(program); echo \"[exited $?]\"; sleep 600"
            _ = try await tmux(["new-session", "-d", "-s", session, "-x", "\(width)", "-y", "\(height)", line])
        }

        @discardableResult
        func tmux(_ arguments: [String]) async throws -> String {
            let result = try await run("/usr/bin/tmux", ["-L", socket, "-f", "/dev/null"] + arguments)
            return result
        }

        /// The pane's text; with `escapes`, its colours as SGR sequences too.
        func screen(escapes: Bool = false) async throws -> String {
            try await tmux(["capture-pane", "-p", "-t", session] + (escapes ? ["-e"] : []))
        }

        /// Waits (bounded) until the screen shows `text`.
        func waitFor(_ text: String, timeout: Duration = .seconds(10)) async -> Bool {
            await waitUntil(timeout: timeout) { ((try? await self.screen()) ?? "").contains(text) }
        }

        /// The program's exit status once it has exited; `nil` while it runs.
        func exitStatus() async throws -> Int? {
            let screen = try await screen()
            guard let start = screen.range(of: "[exited ") else { return nil }
            return Int(screen[start.upperBound...].prefix { $0.isNumber })
        }

        func close() async {
            _ = try? await tmux(["kill-server"])
        }

        private func run(_ executable: String, _ arguments: [String]) async throws -> String {
            let output = FileManager.default.temporaryDirectory.appendingPathComponent("tmux-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: output) }
            let child = try ChildProcess(executable: executable, arguments: arguments, environment: Self.environment, outputFile: output.path)
            guard await child.exited(within: .seconds(10)) else {
                child.signal(SIGKILL)
                throw TestSupportError("tmux \(arguments) did not finish")
            }
            return (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        }

        /// What a person's terminal has: a TERM that takes colours, no NO_COLOR.
        static var environment: [String: String] {
            DTwinBinary.cleanEnvironment.filter { $0.key != "NO_COLOR" && $0.key != "TMUX" }.merging(["TERM": "xterm-256color"]) { $1 }
        }
    }

    @Test
    func aPersonSeesAlignedColouredDecodedLines() async throws {
        let broker = try MosquittoProcess()
        defer { broker.stop() }
        let publisher = try await MessageCollector(port: broker.port, filters: ["unused/#"])
        try await ToolCommandTests.probe(publisher)
        let terminal = try await Terminal([DTwinBinary.path, "inspect", "--broker", broker.url])
        #expect(await terminal.waitFor("probe is online"))
        try await ToolCommandTests.publish(publisher, "dtwin/uno1/up", Array("sim-uno1 data 512".utf8))
        try await ToolCommandTests.publish(publisher, "dtwin/uno1/down", Array("LIG".utf8))
        try await ToolCommandTests.publish(publisher, "dtwin/x.y/up", [0x00, 0xFF])
        #expect(await terminal.waitFor("bad device name"))
        let screen = try await terminal.screen()
        let lines = screen.split(separator: "\n").filter { $0.contains("dtwin/") }
        #expect(lines.count == 4, "\(screen)")
        #expect(lines.contains { $0.contains(#""sim-uno1 data 512""#) && $0.hasSuffix("uno1 reading 512") }, "\(screen)")
        #expect(lines.contains { $0.contains("hex 00 ff") })
        // Columns: every payload starts where the first one does.
        let column = lines.map { line in line.firstIndex { $0 == "\"" || $0 == "h" }.map { line.distance(from: line.startIndex, to: $0) } }
        #expect(Set(column).count == 1, "\(column)\n\(screen)")
        // Colours a person sees: the reading green, the command magenta, the bad name red.
        let colours = try await terminal.screen(escapes: true)
        #expect(colours.contains("\u{1B}[32muno1 reading 512"), "\(colours.debugDescription)")
        #expect(colours.contains("\u{1B}[35mcommand \"LIG\" for uno1"))
        #expect(colours.contains("\u{1B}[31mbad device name"))
        await terminal.close()
        await publisher.close()
    }

    @Test
    func theStatsTableIsRefreshedInPlaceAndCtrlCLeavesTheLastOne() async throws {
        let broker = try MosquittoProcess()
        defer { broker.stop() }
        let publisher = try await MessageCollector(port: broker.port, filters: ["unused/#"])
        try await ToolCommandTests.probe(publisher)
        let terminal = try await Terminal([DTwinBinary.path, "inspect", "--stats", "--broker", broker.url])
        #expect(await terminal.waitFor("probe"))
        for n in 1...3 { try await ToolCommandTests.publish(publisher, "dtwin/uno1/up", Array("sim-uno1 data \(n)".utf8)) }
        try await ToolCommandTests.publish(publisher, "dtwin/esp2/up", Array(#"{"value": 21.5, "unit": "C"}"#.utf8))
        #expect(await terminal.waitFor("21.5 C"))
        #expect(await terminal.waitFor("uno1    3"))
        for n in 4...5 { try await ToolCommandTests.publish(publisher, "dtwin/uno1/up", Array("sim-uno1 data \(n)".utf8)) }
        #expect(await terminal.waitFor("uno1    5"))
        let screen = try await terminal.screen()
        #expect(screen.components(separatedBy: "DEVICE").count == 2, "one table, redrawn in place:\n\(screen)")
        #expect(screen.contains("dtwin inspect --stats: 7 messages (Ctrl-C to stop)"), "\(screen)")
        try await terminal.tmux(["send-keys", "-t", terminal.session, "C-c"])
        #expect(await waitUntil { (try? await terminal.exitStatus()) != nil })
        #expect(try await terminal.exitStatus() == 0, "Ctrl-C ends it cleanly")
        // The last table stays on the screen, below the live one.
        let last = try await terminal.screen()
        #expect(last.components(separatedBy: "DEVICE").count == 3, "the live table and the last:\n\(last)")
        #expect(last.split(separator: "\n").last { $0.hasPrefix("uno1") }?.hasPrefix("uno1    5") == true, "\(last)")
        await terminal.close()
        await publisher.close()
    }
}
