import DTwinContract
import DTwinMQTT
import Synchronization
import Testing

@testable import DTwinBridge

@Suite struct RetryPolicyTests {
    let policy = RetryPolicy(initial: .milliseconds(200), maximum: .seconds(30), maxAge: .seconds(3600))

    @Test func delaysDoubleUpToTheCap() {
        // With jitter 1 the delay is the full ceiling; with jitter 0, half of it.
        let full = (1...12).map { policy.delay(afterAttempt: $0, jitter: 1) }
        #expect(full.prefix(5) == [.milliseconds(200), .milliseconds(400), .milliseconds(800), .milliseconds(1600), .milliseconds(3200)])
        #expect(full.allSatisfy { $0 <= .seconds(30) })
        #expect(full.last == .seconds(30))
        #expect(policy.delay(afterAttempt: 3, jitter: 0) == .milliseconds(400))
        #expect(policy.delay(afterAttempt: 10_000, jitter: 0.5) <= .seconds(30))
    }

    @Test func jitterStaysWithinTheBand() {
        for jitter in stride(from: 0.0, through: 1.0, by: 0.05) {
            let delay = policy.delay(afterAttempt: 4, jitter: jitter)
            #expect(delay >= .milliseconds(800) && delay <= .milliseconds(1600))
        }
    }

    @Test func givesUpOnceTooOld() {
        #expect(policy.decide(afterAttempt: 1, age: .seconds(1), jitter: 0) == .retry(after: .milliseconds(100)))
        #expect(policy.decide(afterAttempt: 50, age: .seconds(3590), jitter: 1) == .giveUp)
    }
}

@Suite struct DeliveryLanesTests {
    @Test func oneJobPerLaneAtATimeInOrder() {
        var lanes = DeliveryLanes<Int>()
        for job in 1...3 { lanes.enqueue(job, lane: "a") }
        lanes.enqueue(10, lane: "b")
        let first = lanes.next()
        #expect(first?.lane == "a" && first?.job == 1)
        let second = lanes.next()
        #expect(second?.lane == "b" && second?.job == 10)
        #expect(lanes.next() == nil)  // a is busy, b is empty
        lanes.complete(lane: "a")
        #expect(lanes.next()?.job == 2)
        #expect(lanes.inFlightCount == 2)
        lanes.complete(lane: "a")
        lanes.complete(lane: "b")
        #expect(lanes.next()?.job == 3)
        lanes.complete(lane: "a")
        #expect(lanes.isIdle)
    }

    @Test func aBusyLaneDoesNotHoldUpOthers() {
        var lanes = DeliveryLanes<String>()
        lanes.enqueue("stuck-1", lane: "stuck")
        lanes.enqueue("stuck-2", lane: "stuck")
        _ = lanes.next()  // stuck-1 is in flight (being retried) and never completes here
        var delivered: [String] = []
        for n in 0..<100 {
            lanes.enqueue("ok-\(n)", lane: "ok-\(n % 7)")
            while let (lane, job) = lanes.next() {
                delivered.append(job)
                lanes.complete(lane: lane)
            }
        }
        #expect(delivered.count == 100)
        #expect(lanes.queuedCount == 1)  // stuck-2 waits behind stuck-1
    }

    @Test func removeAllQueuedKeepsInFlightOut() {
        var lanes = DeliveryLanes<Int>()
        for job in 1...4 { lanes.enqueue(job, lane: job % 2 == 0 ? "even" : "odd") }
        _ = lanes.next()
        let removed = lanes.removeAllQueued()
        #expect(removed.sorted() == [2, 3, 4])
        #expect(lanes.queuedCount == 0)
        #expect(lanes.next() == nil)
    }
}

@Suite struct DeliverySchedulerTests {
    /// A worker that takes the next job as it completes one gets them in the order idle workers
    /// would: the longest-waiting ready lane first, a lane's own jobs in order.
    @Test func completingTakesTheLongestWaitingReadyJob() async {
        let scheduler = DeliveryScheduler<String>()
        for (job, lane) in [("a1", "a"), ("a2", "a"), ("b1", "b")] { scheduler.enqueue(job, lane: lane) }
        let first = await scheduler.next()
        #expect(first?.job == "a1")
        let second = scheduler.completeAndTakeNext(lane: "a")
        #expect(second?.job == "b1", "b was ready before a's next")
        #expect(scheduler.completeAndTakeNext(lane: "b")?.job == "a2")
        #expect(scheduler.completeAndTakeNext(lane: "a") == nil)
        #expect(scheduler.isIdle)
    }

    /// Four workers, as the delivery service runs them: everything is drained, then they exit;
    /// each lane's jobs come in order and never two at once.
    @Test func workersDrainEverythingInLaneOrderThenExitWhenFinished() async {
        let scheduler = DeliveryScheduler<Int>()
        let busyLanes = BusyLanes()
        let results = await withTaskGroup(of: (seen: [Int], overlaps: Int).self) { group in
            for _ in 0..<4 {
                group.addTask {
                    var seen: [Int] = []
                    var overlaps = 0
                    var work = await scheduler.next()
                    while let (lane, job) = work {
                        if !busyLanes.lanes.withLock({ $0.insert(lane).inserted }) { overlaps += 1 }
                        seen.append(job)
                        await Task.yield()
                        busyLanes.lanes.withLock { _ = $0.remove(lane) }
                        work = scheduler.completeAndTakeNext(lane: lane)
                        if work == nil { work = await scheduler.next() }
                    }
                    return (seen, overlaps)
                }
            }
            for job in 0..<1000 { scheduler.enqueue(job, lane: "lane-\(job % 10)") }
            scheduler.finish()
            var all: [(seen: [Int], overlaps: Int)] = []
            for await result in group { all.append(result) }
            return all
        }
        #expect(results.flatMap(\.seen).sorted() == Array(0..<1000))
        #expect(results.map(\.overlaps).reduce(0, +) == 0, "a lane had two jobs in flight at once")
        for (seen, _) in results {
            for lane in 0..<10 {
                let mine = seen.filter { $0 % 10 == lane }
                #expect(mine == mine.sorted())
            }
        }
    }

    /// The lanes some worker is delivering on, shared by the workers of a test.
    final class BusyLanes: Sendable {
        let lanes = Mutex<Set<String>>([])
    }

    @Test func cancelledWorkersStopWaiting() async {
        let scheduler = DeliveryScheduler<Int>()
        let worker = Task { await scheduler.next() }
        worker.cancel()
        #expect(await worker.value == nil)
    }
}

@Suite struct MessageIntakeTests {
    let tree = try! TopicTree()
    var id: MessageID {
        var generator = SplitMix64(seed: 1)
        return MessageID(millis: 0, using: &generator)
    }

    func decide(_ topic: String, _ payload: [UInt8] = Array("x".utf8), maxPayload: Int = 100) -> IntakeDecision {
        MessageIntake.decide(
            MQTTMessage(topic: topic, payload: payload), tree: tree, maxPayload: maxPayload, receivedAtMillis: 5, id: id)
    }

    @Test func upIsDelivered() {
        guard case .deliver(let message) = decide("dtwin/uno1/up", [0xFF, 0x00]) else {
            Issue.record("up not delivered")
            return
        }
        #expect(message.device.rawValue == "uno1")
        #expect(message.payload == [0xFF, 0x00])  // bytes as they came, UTF-8 or not
        #expect(message.receivedAtMillis == 5)
        #expect(message.id == id)
    }

    @Test func oversizeIsDeadLettered() {
        guard case .deadLetter(let letter) = decide("dtwin/a/up", Array(repeating: 1, count: 101)) else {
            Issue.record("oversize payload not dead-lettered")
            return
        }
        #expect(letter.reason.contains("101 bytes"))
        #expect(letter.payloadBytes?.count == 101)
        #expect(letter.device == "a")
        guard case .deliver = decide("dtwin/a/up", Array(repeating: 1, count: 100)) else {
            Issue.record("a payload at the limit must pass")
            return
        }
    }

    @Test func invalidDeviceNamesOnUpAreDeadLettered() {
        guard case .deadLetter(let letter) = decide("dtwin/bad name/up") else {
            Issue.record("bad name not dead-lettered")
            return
        }
        #expect(letter.reason.contains("invalid device name"))
        #expect(letter.topic == "dtwin/bad name/up")
    }

    @Test func smsTextIsRelayedUnlessRetainedOrNotText() throws {
        let uno1 = try DeviceName(validating: "uno1")
        #expect(decide("dtwin/uno1/sms", Array("door open".utf8)) == .sms(uno1, "door open"))
        let retained = MessageIntake.decide(
            MQTTMessage(topic: "dtwin/uno1/sms", payload: Array("again".utf8), retain: true), tree: tree, maxPayload: 100,
            receivedAtMillis: 5, id: id)
        guard case .ignore = retained else {
            Issue.record("a retained SMS text must not be sent")
            return
        }
        guard case .ignore = decide("dtwin/uno1/sms", [0xFF, 0xFE]), case .ignore = decide("dtwin/uno1/sms", []) else {
            Issue.record("binary or empty SMS text must not be sent")
            return
        }
    }

    /// `state/set` goes to the twin, unless it comes from the broker's retained store (it would
    /// undo later changes at every start); the bridge's own twin topics are left alone.
    @Test func twinRequestsAreTakenUnlessRetained() throws {
        let uno1 = try DeviceName(validating: "uno1")
        #expect(decide("dtwin/uno1/state/set", Array("{}".utf8)) == .twinSet(uno1, Array("{}".utf8)))
        let retained = MessageIntake.decide(
            MQTTMessage(topic: "dtwin/uno1/state/set", payload: Array("{}".utf8), retain: true), tree: tree, maxPayload: 100,
            receivedAtMillis: 5, id: id)
        #expect(retained == .ignore("a retained state/set is not applied (publish it without retain)"))
        #expect(decide("dtwin/uno1/state") == .ownTopic && decide("dtwin/uno1/state/rejected") == .ownTopic)
    }

    @Test func statusIsRecorded() throws {
        #expect(decide("dtwin/uno1/status", Array("online".utf8)) == .deviceStatus(try DeviceName(validating: "uno1"), "online"))
    }

    @Test(arguments: ["dtwin/bridge/deadletter", "dtwin/bridge/ipcommand/uno1"])
    func theBridgesOwnTopicsNeedNothing(_ topic: String) {
        #expect(decide(topic) == .ownTopic)
    }

    /// The bridge's status is watched, so that nobody else's `offline` stays there.
    @Test func theBridgesStatusIsReadWithItsRetainFlag() {
        #expect(decide("dtwin/bridge/status", Array("offline".utf8)) == .bridgeStatus("offline", retained: false, instance: nil))
        #expect(decide("dtwin/bridge/status/gw-2", Array("online".utf8)) == .bridgeStatus("online", retained: false, instance: "gw-2"))
        if case .ignore = decide("dtwin/bridge/status/a+b") {} else { Issue.record("a bad instance name is not ignored") }
    }

    @Test(arguments: ["dtwin/a/down", "other/a/up", "dtwin/a/b/up", "dtwin/a.b/status"])
    func othersAreIgnored(_ topic: String) {
        guard case .ignore = decide(topic) else {
            Issue.record("\(topic) not ignored")
            return
        }
    }
}
