import Testing

@testable import DTwinBridge

/// Who keeps `<prefix>/bridge/status` `online`: one bridge its own topic; several instances
/// their own topics and, together, the group's.
struct BridgeStatusBookTests {
    @Test func aBridgeAloneRepairsItsOwnTopicOnly() {
        var book = BridgeStatusBook(instance: "")
        #expect(book.note("online", instance: nil, stopping: false) == [])
        #expect(book.note("offline", instance: nil, stopping: false) == [.ownStatus])
        #expect(book.note("offline", instance: nil, stopping: true) == [], "its own offline at a stop is left alone")
        #expect(!book.isLastOnline, "a bridge alone has no group topic to say offline on")
    }

    @Test func anInstanceStartsTheGroupTopicAndKeepsItOnline() {
        var book = BridgeStatusBook(instance: "a")
        // Its own birth comes back before anything was ever written on the group's topic.
        #expect(book.note("online", instance: "a", stopping: false) == [.groupStatus])
        #expect(book.note("online", instance: "a", stopping: false) == [], "written once, not at every echo")
        #expect(book.note("online", instance: nil, stopping: false) == [])
        // A last will left by the group's last run, or someone else's offline: put right.
        #expect(book.note("offline", instance: nil, stopping: false) == [.groupStatus])
        #expect(book.groupStatus == "online")
        #expect(book.note("offline", instance: "a", stopping: false) == [.ownStatus])
    }

    @Test func anotherInstanceDyingChangesNothingAndTheLastOneSaysOffline() {
        var book = BridgeStatusBook(instance: "a")
        _ = book.note("online", instance: "a", stopping: false)
        _ = book.note("online", instance: nil, stopping: false)
        #expect(book.note("online", instance: "b", stopping: false) == [])
        #expect(!book.isLastOnline, "b runs: a stopping leaves the group online")
        #expect(book.note("offline", instance: "b", stopping: false) == [], "b's last will is b's only")
        #expect(book.isLastOnline)
        #expect(book.note("offline", instance: nil, stopping: true) == [], "a stopping repairs nothing")
    }
}
