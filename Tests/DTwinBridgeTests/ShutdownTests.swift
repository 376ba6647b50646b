import Synchronization
import Testing

@testable import DTwinBridge

/// The shutdown's order, every path through it, and the signal its waits are built on.
@Suite struct ShutdownStateMachineTests {
    /// Runs the machine to the end, answering each action as `connected` and `outcome` say.
    static func run(hasSpool: Bool, connected: Bool, outcome: ShutdownStateMachine.Outcome = .completed) -> [ShutdownStateMachine.Action] {
        var machine = ShutdownStateMachine(hasSpool: hasSpool)
        var actions: [ShutdownStateMachine.Action] = []
        var action = machine.begin()
        while action != .none, actions.count < 20 {
            actions.append(action)
            switch action {
            case .drainLanes: action = machine.lanesDrained(outcome, connected: connected)
            case .drainPublishQueue: action = machine.publishQueueDrained(outcome, connected: connected)
            case .announceOffline: action = machine.offlineAnnounced()
            case .disconnect: action = machine.disconnected()
            case .finishWorkers: action = machine.workersFinished(outcome)
            case .closeUp: action = machine.closedUp()
            case .none: break
            }
        }
        #expect(machine.phase == .done)
        return actions
    }

    @Test func connectedWithASpool() {
        #expect(
            Self.run(hasSpool: true, connected: true) == [
                .drainLanes(untilQuiet: false), .drainPublishQueue, .announceOffline, .disconnect, .finishWorkers, .closeUp,
            ])
    }

    @Test func withoutASpoolTheLanesAreDeliveredUntilQuiet() {
        #expect(Self.run(hasSpool: false, connected: true).first == .drainLanes(untilQuiet: true))
    }

    @Test func disconnectedNothingIsPublished() {
        #expect(Self.run(hasSpool: true, connected: false) == [.drainLanes(untilQuiet: false), .disconnect, .finishWorkers, .closeUp])
    }

    @Test func theDeadlineSkipsNoStep() {
        // Every wait timed out: the broker still hears offline, and the spool is still closed.
        #expect(Self.run(hasSpool: true, connected: true, outcome: .deadlineReached) == Self.run(hasSpool: true, connected: true))
    }

    @Test func eventsOutOfOrderChangeNothing() {
        var machine = ShutdownStateMachine(hasSpool: true)
        #expect(machine.disconnected() == .none)
        #expect(machine.closedUp() == .none)
        #expect(machine.phase == .running)
        _ = machine.begin()
        #expect(machine.begin() == .none)
        #expect(machine.offlineAnnounced() == .none)
        #expect(machine.phase == .drainingLanes)
    }
}

@Suite struct ChangeSignalTests {
    @Test func aWaiterWakesOnTheChangeThatMakesItsConditionTrue() async {
        let signal = ChangeSignal()
        let value = Atomic<Int>(0)
        let waiter = Task { await signal.wait(until: { value.load(ordering: .relaxed) == 3 }, deadline: .now + .seconds(30)) }
        for n in 1...3 {
            value.store(n, ordering: .relaxed)
            signal.changed()
        }
        #expect(await waiter.value)
    }

    @Test func theDeadlineEndsAWaitWhoseConditionNeverHolds() async {
        let signal = ChangeSignal()
        #expect(await signal.wait(until: { false }, deadline: .now + .milliseconds(50)) == false)
    }

    @Test func cancellationEndsAWait() async {
        let signal = ChangeSignal()
        let waiter = Task { await signal.wait(until: { false }, deadline: .now + .seconds(60)) }
        waiter.cancel()
        #expect(await waiter.value == false)
    }

    @Test func aConditionAlreadyTrueReturnsAtOnce() async {
        #expect(await ChangeSignal().wait(until: { true }, deadline: .now))
    }
}
