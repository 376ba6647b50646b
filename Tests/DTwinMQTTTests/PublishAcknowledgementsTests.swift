import Testing

@testable import DTwinMQTT

@Suite struct PublishAcknowledgementsTests {
    let later = ContinuousClock.now + .seconds(60)

    @Test func anAckAfterRegistrationFindsItsWaiter() {
        var acks = PublishAcknowledgements<String>()
        acks.begin()
        let registered = acks.register(7, "seven", deadline: later)
        #expect(registered == .waiting)
        let waiter = acks.acknowledged(7)
        #expect(waiter == "seven")
        #expect(acks.waitingCount == 0)
    }

    @Test func anAckBeforeRegistrationIsNotLost() {
        var acks = PublishAcknowledgements<String>()
        acks.begin()
        let early = acks.acknowledged(9)
        #expect(early == nil)  // PUBACK raced ahead of the publisher
        let registered = acks.register(9, "nine", deadline: later)
        #expect(registered == .alreadyAcknowledged(reasonCode: 0))  // so the caller resumes at once
        #expect(acks.waitingCount == 0)
    }

    @Test func strayAcksAreForgottenOnceNoPublishIsInProgress() {
        var acks = PublishAcknowledgements<String>()
        let stray = acks.acknowledged(3)
        #expect(stray == nil)  // nobody publishing: not remembered
        acks.begin()
        let registered = acks.register(3, "three", deadline: later)
        #expect(registered == .waiting)  // so a later id 3 still waits
        let waiter = acks.acknowledged(3)
        #expect(waiter == "three")
    }

    @Test func aRefusalThatRacesAheadKeepsItsReasonCode() {
        var acks = PublishAcknowledgements<String>()
        acks.begin()
        #expect(acks.acknowledged(4, reasonCode: 135) == nil)
        #expect(acks.register(4, "four", deadline: later) == .alreadyAcknowledged(reasonCode: 135))
        acks.begin()
        #expect(acks.register(5, "five", deadline: later) == .waiting)
        #expect(acks.acknowledged(5, reasonCode: 135) == "five")
    }

    @Test func expiredWaitersAreReturnedOnce() {
        var acks = PublishAcknowledgements<Int>()
        let now = ContinuousClock.now
        acks.begin()
        _ = acks.register(1, 1, deadline: now - .seconds(1))
        acks.begin()
        _ = acks.register(2, 2, deadline: later)
        let first = acks.expired(at: now)
        let second = acks.expired(at: now)
        let rest = acks.removeAll()
        #expect(first == [1])
        #expect(second.isEmpty)
        #expect(rest == [2])
    }
}
