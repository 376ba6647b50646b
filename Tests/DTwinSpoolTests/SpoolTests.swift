import DTwinContract
import DTwinSpool
import Foundation
import GRDB
import Testing

/// The spool against a real SQLite file.
@Suite struct SpoolTests {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dtwin-spool-\(UUID().uuidString)")
    var path: String { folder.appendingPathComponent("spool.sqlite").path }

    func message(_ n: Int, device: String = "uno1", payload: [UInt8]? = nil) -> DeviceMessage {
        DeviceMessage(
            id: MessageID(rawValue: "id-\(n)"), device: DeviceName(device)!, topic: "dtwin/\(device)/up",
            payload: payload ?? Array("sim-\(device) data \(n)".utf8), receivedAtMillis: 1_700_000_000_000 + Int64(n),
            source: n % 2 == 0 ? .mqtt : .twilioIPCommand)
    }

    @Test func messagesComeBackInOrderWithEveryFieldAfterReopening() throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let binary: [UInt8] = [0x00, 0xFF, 0xC3, 0x28] + (0...255).map(UInt8.init)
        var sent = (0..<20).map { message($0, device: $0 % 3 == 0 ? "esp-3" : "uno1", payload: $0 == 7 ? binary : nil) }
        // A topic prefix outside ASCII: the byte accounting must agree after reopening.
        sent[5].topic = "télémétrie/uno1/up"
        do {
            let spool = try Spool(path: path, maxBytes: 1_000_000)
            let seqs = try sent.map { try spool.append($0) }
            #expect(seqs == seqs.sorted())
            #expect(Set(seqs).count == sent.count)
            #expect(spool.count == 20)
        }
        // A new process: what the last one wrote is all there, oldest first.
        let reopened = try Spool(path: path, maxBytes: 1_000_000)
        #expect(try reopened.entries().map(\.message) == sent)
        #expect(reopened.count == 20)
        #expect(reopened.bytes == sent.map { Spool.size(of: $0) }.reduce(0, +))
    }

    /// The MQTT thread's append and a webhook's (async) one, each on its own thread, store the
    /// same rows, an empty payload included.
    @Test func bothAppendPathsStoreTheSameRows() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        var sent = [message(0, payload: []), message(1, payload: [0x00, 0xFF, 0x00]), message(2), message(3, device: "esp-3")]
        sent[2].topic = "télémétrie/uno1/up"
        let spool = try Spool(path: path, maxBytes: 1_000_000)
        // From a synchronous function, as the MQTT thread calls it.
        func appendOnThisThread(_ message: DeviceMessage) throws { _ = try spool.append(message) }
        for message in sent { try appendOnThisThread(message) }
        for var message in sent {
            message.id = MessageID(rawValue: message.id.rawValue + "-async")
            _ = try await spool.append(message)
        }
        let stored = try spool.entries().map(\.message)
        #expect(stored.count == 8)
        #expect(Array(stored.prefix(4)) == sent)
        #expect(stored.suffix(4).map { $0.id.rawValue } == sent.map { $0.id.rawValue + "-async" })
        #expect(zip(stored.prefix(4), stored.suffix(4)).allSatisfy { $0.payload == $1.payload && $0.topic == $1.topic && $0.source == $1.source })
        // Stored as a BLOB both ways: an empty payload is not NULL.
        let types = try await DatabaseQueue(path: path).read { db in
            try String.fetchAll(db, sql: "SELECT typeof(payload) FROM inbound ORDER BY seq")
        }
        #expect(types == Array(repeating: "blob", count: 8))
    }

    /// An insert SQLite refuses is a clear error (nothing counted), and the next one works.
    @Test func aRefusedInsertIsAnErrorAndTheNextOneWorks() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let spool = try Spool(path: path, maxBytes: 1_000_000)
        func appendOnThisThread(_ message: DeviceMessage) throws(SpoolError) -> Int64 { try spool.append(message) }
        _ = try appendOnThisThread(message(0))
        let other = try DatabaseQueue(path: path)
        try await other.write {
            try $0.execute(sql: "CREATE TRIGGER refuse BEFORE INSERT ON inbound BEGIN SELECT RAISE(ABORT, 'the disk said no'); END")
        }
        #expect {
            _ = try appendOnThisThread(message(1))
        } throws: { error in
            "\(error)".contains("cannot write to the spool") && "\(error)".contains("the disk said no")
        }
        #expect(spool.count == 1)
        try await other.write { try $0.execute(sql: "DROP TRIGGER refuse") }
        _ = try appendOnThisThread(message(2))
        #expect(try spool.entries().map(\.message) == [message(0), message(2)])
    }

    /// Webhook SIDs survive reopening (a replay after a restart is recognised); a released one
    /// may act again; pruning keeps the newest within the retention and the capacity.
    @Test func webhookSidsSurviveReopeningAndArePrunedByAgeAndCount() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let now: Int64 = 1_800_000_000_000
        do {
            let spool = try Spool(path: path, maxBytes: 1_000_000)
            #expect(try await spool.claimSid("SM1", atMillis: now))
            #expect(try await spool.claimSid("SM1", atMillis: now + 5) == false)
            #expect(try await spool.claimSid("SM2", atMillis: now))
            await spool.releaseSid("SM2")
        }
        let spool = try Spool(path: path, maxBytes: 1_000_000)
        #expect(try await spool.claimSid("SM1", atMillis: now + 10) == false, "remembered across reopening")
        #expect(try await spool.claimSid("SM2", atMillis: now + 10), "released, so it may act again")
        for n in 0..<10 { #expect(try await spool.claimSid("HG\(n)", atMillis: now + 100 + Int64(n))) }
        #expect(try spool.sidCount() == 12)
        // SM1 is past a 1-minute retention an hour later; then the newest 5 are kept.
        let pruned = try await spool.pruneSids(nowMillis: now + 3_600_000, retentionMillis: 3_600_000 - 50, capacity: 5)
        let left = try spool.sidCount()
        #expect(pruned == 7 && left == 5)
        let newest = try await spool.claimSid("HG9", atMillis: now)
        let pruneAway = try await spool.claimSid("HG4", atMillis: now)
        #expect(!newest && pruneAway)
    }

    @Test func removalsLeaveAtTheNextCommitAndNotBefore() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let spool = try Spool(path: path, maxBytes: 1_000_000)
        let entries = try (0..<10).map { n in (try spool.append(message(n)), message(n)) }
        for (seq, message) in entries where Int(message.id.rawValue.dropFirst(3))! % 2 == 0 {
            spool.remove(seq, message: message)
        }
        // Not yet committed: a crash now delivers them again (same MessageId), loses nothing.
        #expect(try Spool(path: path, maxBytes: 1_000_000).entries().count == 10)
        #expect(try await spool.commitRemovals() == 5)
        #expect(try await spool.commitRemovals() == 0)
        let left = try Spool(path: path, maxBytes: 1_000_000).entries()
        #expect(left.map(\.message.id.rawValue) == ["id-1", "id-3", "id-5", "id-7", "id-9"])
        #expect(spool.count == 5)
    }

    /// `checkpoint()` copies the whole WAL into the file from a connection of its own, and says
    /// so; then nothing is left to copy.
    @Test func checkpointCopiesTheWholeWAL() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let spool = try Spool(path: path, maxBytes: 1_000_000)
        let count = 20
        // The MQTT thread's (synchronous) append.
        _ = try (0..<count).map { try spool.append(message($0)) }
        let (frames, checkpointed) = try await spool.checkpoint()
        #expect(frames >= count)
        #expect(checkpointed == frames)
        let again = try await spool.checkpoint()
        #expect(again.checkpointed == again.walFrames)
        #expect(try Spool(path: path, maxBytes: 1_000_000).entries().count == count)
    }

    /// The writer's commits leave the WAL to `restartWAL()` (SQLite would checkpoint in the
    /// writer at 1,000 pages), which starts it over and loses nothing; past its own limit the
    /// writer checkpoints after all, so a WAL nobody restarts stays bounded.
    @Test func theWALIsStartedOverByRestartWALAndBoundedWithout() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let spool = try Spool(path: path, maxBytes: 100_000_000)
        let first = Spool.walRestartFrames + 200
        _ = try (0..<first).map { try spool.append(message($0)) }
        #expect(spool.walFrames >= first)
        #expect(try await spool.restartWAL())
        #expect(spool.walFrames == 0)
        _ = try [message(first)].map { try spool.append($0) }
        #expect((1...2).contains(spool.walFrames))
        #expect(try spool.entries().count == first + 1)

        // Nobody restarts it now: the writer's own checkpoint holds it to its limit.
        let lengths = try ((first + 1)..<(first + 1 + Spool.writerCheckpointFrames + 500)).map { n in
            _ = try spool.append(message(n))
            return spool.walFrames
        }
        let longest = lengths.max() ?? 0
        #expect(longest >= Spool.writerCheckpointFrames)
        #expect(longest < Spool.writerCheckpointFrames + 10)
        #expect(zip(lengths, lengths.dropFirst()).contains { $1 < $0 })
        #expect(try spool.entries().count == first + 1 + Spool.writerCheckpointFrames + 500)
    }

    /// A reader in the WAL postpones a restart (the writer would wait for it): `restartWAL()`
    /// says no and the spool goes on taking messages; once the reader has left it says yes.
    @Test func aReaderInTheWALPostponesTheRestart() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let spool = try Spool(path: path, maxBytes: 100_000_000)
        _ = try (0..<50).map { try spool.append(message($0)) }
        // A reader on a thread of its own, holding its read transaction until released.
        let reader = try DatabaseQueue(path: path)
        let (reading, release, left) = (DispatchSemaphore(value: 0), DispatchSemaphore(value: 0), DispatchSemaphore(value: 0))
        Thread.detachNewThread {
            let seen = try? reader.read { db in
                let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM inbound")
                reading.signal()
                _ = release.wait(timeout: .now() + 30)
                return count
            }
            #expect(seen == 50)
            left.signal()
        }
        #expect(reading.wait(timeout: .now() + 10) == .success)
        #expect(try await spool.restartWAL() == false)
        _ = try [message(50)].map { try spool.append($0) }
        release.signal()
        #expect(left.wait(timeout: .now() + 10) == .success)
        #expect(try await spool.restartWAL())
        #expect(try spool.entries().count == 51)
    }

    @Test func aFullSpoolRefusesWithAClearErrorUntilSpaceIsFreed() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let big = [UInt8](repeating: 0x41, count: 400_000)
        let spool = try Spool(path: path, maxBytes: 1_000_000)
        let first = try await spool.append(message(1, payload: big))
        _ = try await spool.append(message(2, payload: big))
        do {
            _ = try await spool.append(message(3, payload: big))
            Issue.record("a third 400 kB message fit in a 1 MB spool")
        } catch {
            #expect(error.isFull)
            #expect(error.description.contains("spool.maxBytes"))
        }
        // A delivered message's space counts as free as soon as it is noted.
        spool.remove(first, message: message(1, payload: big))
        _ = try await spool.append(message(3, payload: big))
        try await spool.commitRemovals()
        #expect(try spool.entries().map(\.message.id.rawValue) == ["id-2", "id-3"])
    }

    @Test func anUnwritableLocationIsAClearErrorNamingThePath() throws {
        let blocker = folder.appendingPathComponent("a-file")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data("x".utf8).write(to: blocker)
        // The spool's folder is a regular file: no SQLite database can be created under it.
        do {
            _ = try Spool(path: blocker.appendingPathComponent("spool.sqlite").path, maxBytes: 1_000_000)
            Issue.record("a spool opened under a regular file")
        } catch {
            #expect(error.description.contains("a-file/spool.sqlite"))
            #expect(!error.isFull)
        }
    }

    @Test func aClosedSpoolRefusesNewMessages() throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let spool = try Spool(path: path, maxBytes: 1_000_000)
        spool.close()
        #expect(throws: SpoolError.self) { try spool.append(message(1)) }
    }

    // MARK: messages to publish

    func command(_ n: Int, device: String = "uno1") -> OutboundMessage {
        OutboundMessage(topic: "dtwin/\(device)/down", payload: Array("C\(n)".utf8), createdAtMillis: 1_700_000_000_000 + Int64(n))
    }

    @Test func messagesToPublishSurviveReopeningAndLeaveOnlyWhenRemoved() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let sent = (0..<10).map { command($0, device: $0 % 2 == 0 ? "a" : "b") }
        do {
            let spool = try Spool(path: path, maxBytes: 1_000_000)
            let seqs = try sent.map { try spool.appendOutbound($0, bounded: true) }
            #expect(seqs == seqs.sorted())
            #expect(spool.outboundCount == 10)
            #expect(spool.count == 0, "device messages and messages to publish are counted apart")
        }
        let reopened = try Spool(path: path, maxBytes: 1_000_000)
        let entries = try reopened.outbound(limit: 100)
        #expect(entries.map(\.message) == sent)
        #expect(reopened.outboundCount == 10)
        #expect(reopened.bytes == sent.map { Spool.size(of: $0) }.reduce(0, +))
        #expect(try reopened.outbound(limit: 3).map(\.message) == Array(sent.prefix(3)))
        try await reopened.removeOutbound(Array(entries.prefix(4)))
        #expect(try !reopened.outboundContains(entries[0].seq))
        #expect(try reopened.outboundContains(entries[4].seq))
        let left = try Spool(path: path, maxBytes: 1_000_000)
        #expect(try left.outbound(limit: 100).map(\.message) == Array(sent.dropFirst(4)))
        #expect(left.outboundCount == 6)
        #expect(left.bytes == reopened.bytes)
    }

    /// A retained message (a twin document) replaces the retained ones of its topic that still
    /// wait, in the file and in the accounting; a superseded entry removed after publishing is
    /// not counted out twice.
    @Test func aRetainedMessageReplacesTheOlderOnesOfItsTopic() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        func state(_ n: Int, device: String = "a") -> OutboundMessage {
            OutboundMessage(topic: "dtwin/\(device)/state", payload: Array(#"{"version":\#(n)}"#.utf8), createdAtMillis: Int64(n), retain: true)
        }
        // The network thread's (blocking) way, and the async one, side by side.
        func blocking(_ spool: Spool, _ message: OutboundMessage) throws { _ = try spool.appendOutbound(message, bounded: false) }
        let spool = try Spool(path: path, maxBytes: 1_000_000)
        try blocking(spool, state(1))
        let publishing = try spool.outbound(limit: 10)
        try blocking(spool, command(1, device: "a"))
        _ = try await spool.appendOutbound(state(2), bounded: false)
        try blocking(spool, state(1, device: "b"))
        _ = try await spool.appendOutbound(state(3), bounded: false)
        let expected = [command(1, device: "a"), state(1, device: "b"), state(3)]
        #expect(try spool.outbound(limit: 10).map(\.message) == expected)
        #expect(spool.outboundCount == 3)
        #expect(spool.bytes == expected.map { Spool.size(of: $0) }.reduce(0, +))
        // The publisher had read state 1 before it was replaced: its removal changes nothing.
        try await spool.removeOutbound(publishing)
        #expect(spool.outboundCount == 3)
        #expect(spool.bytes == expected.map { Spool.size(of: $0) }.reduce(0, +))
        let reopened = try Spool(path: path, maxBytes: 1_000_000)
        #expect(try reopened.outbound(limit: 10).map(\.message) == expected)
        #expect(reopened.bytes == spool.bytes)
    }

    /// A spool file from before retained messages gets the column, its messages unretained.
    @Test func aSpoolFromAnEarlierVersionOpens() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try await DatabaseQueue(path: path).write { db in
            try db.execute(
                sql: """
                    CREATE TABLE outbound (seq INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT NULL, createdAt INTEGER NOT NULL);
                    INSERT INTO outbound (topic, payload, createdAt) VALUES ('dtwin/a/down', CAST('C1' AS BLOB), 1700000000001);
                    """)
        }
        let spool = try Spool(path: path, maxBytes: 1_000_000)
        #expect(try spool.outbound(limit: 10).map(\.message) == [command(1, device: "a")])
        _ = try await spool.appendOutbound(
            OutboundMessage(topic: "dtwin/a/state", payload: [0x7B, 0x7D], createdAtMillis: 2, retain: true), bounded: false)
        #expect(try spool.outbound(limit: 10).map(\.message.retain) == [false, true])
    }

    @Test func aFullSpoolRefusesNewCommandsButKeepsRepliesAndDeadLetters() throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let big = [UInt8](repeating: 0x41, count: 600)
        let spool = try Spool(path: path, maxBytes: 1_000)
        _ = try spool.append(message(1, payload: big))
        do {
            _ = try spool.appendOutbound(command(1), bounded: true)
            _ = try spool.appendOutbound(OutboundMessage(topic: "dtwin/a/down", payload: big, createdAtMillis: 0), bounded: true)
            Issue.record("a bounded message went past spool.maxBytes")
        } catch {
            #expect(error.isFull)
            #expect(error.description.contains("1 messages from devices"))
        }
        // A reply takes the place of the message it answers: refusing it would lose it.
        _ = try spool.appendOutbound(OutboundMessage(topic: "dtwin/a/down", payload: big, createdAtMillis: 0), bounded: false)
        #expect(spool.bytes > spool.maxBytes)
        // Device messages are measured on their own: what waits for the broker never holds
        // them back (it leaves only when a PUBACK is read, on the thread they would block).
        _ = try spool.append(message(2))
        #expect(throws: SpoolError.self) { try spool.append(message(3, payload: big)) }
    }
}
