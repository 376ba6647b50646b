import Testing

@testable import DTwinHTTP

/// The dashboard's sessions: random ids, alive while used, gone after their lifetime or a
/// logout, and read from a Cookie header among others.
@Suite struct DashboardSessionsTests {
    @Test func aSessionLivesWhileUsedAndEndsAfterItsLifetimeOrALogout() {
        let sessions = DashboardSessions()
        let id = sessions.open(atMillis: 0)
        #expect(id.count == 64 && id.allSatisfy(\.isHexDigit))
        #expect(sessions.open(atMillis: 0) != id)
        #expect(sessions.isValid(id, atMillis: DashboardSessions.lifetime - 1))
        // Used just now: alive for a whole lifetime from here.
        #expect(sessions.isValid(id, atMillis: 2 * DashboardSessions.lifetime - 2))
        #expect(!sessions.isValid(id, atMillis: 3 * DashboardSessions.lifetime))
        let other = sessions.open(atMillis: 0)
        sessions.close(other)
        #expect(!sessions.isValid(other, atMillis: 1))
        #expect(!sessions.isValid("guessed", atMillis: 1))
    }

    @Test func theOldestSessionGivesWayPastTheCapacity() {
        let sessions = DashboardSessions()
        let first = sessions.open(atMillis: 0)
        for n in 1..<DashboardSessions.capacity { _ = sessions.open(atMillis: Int64(n)) }
        #expect(sessions.isValid(first, atMillis: 5_000) == true)  // used: now the newest
        let second = sessions.open(atMillis: 5_001)
        _ = sessions.open(atMillis: 5_002)
        #expect(sessions.isValid(second, atMillis: 5_003), "the one used longest ago went, not the newest")
    }

    @Test func theIdIsFoundInACookieHeader() {
        #expect(DashboardSessions.id(inCookieHeader: "a=1; dtwin_session=abc; b=2") == "abc")
        #expect(DashboardSessions.id(inCookieHeader: "dtwin_session=xyz") == "xyz")
        #expect(DashboardSessions.id(inCookieHeader: "other_dtwin_session=xyz") == nil)
        #expect(DashboardSessions.id(inCookieHeader: nil) == nil)
    }
}
