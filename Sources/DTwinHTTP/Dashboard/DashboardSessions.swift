import Synchronization

/// The dashboard's logins: a random session id per successful login, kept in memory (a restart
/// of the bridge logs everyone out), valid for ``lifetime`` after its last use. The id travels
/// in an `HttpOnly`, `SameSite=Strict` cookie: the page's scripts never see it, and no other
/// site's page can make the browser send it.
public final class DashboardSessions: Sendable {
    public static let cookieName = "dtwin_session"
    public static let lifetime: Int64 = 12 * 3600 * 1000
    /// The most sessions kept at once; past it the one used longest ago goes.
    public static let capacity = 1000

    private let sessions = Mutex<[String: Int64]>([:])

    public init() {}

    /// A new session, valid from `now`.
    public func open(atMillis now: Int64) -> String {
        var generator = SystemRandomNumberGenerator()
        let id = (0..<4).map { _ in String(generator.next() as UInt64, radix: 16).leftPadded(to: 16) }.joined()
        sessions.withLock { sessions in
            sessions = sessions.filter { now - $0.value < Self.lifetime }
            if sessions.count >= Self.capacity, let oldest = sessions.min(by: { $0.value < $1.value })?.key {
                sessions[oldest] = nil
            }
            sessions[id] = now
        }
        return id
    }

    /// Whether `id` is a live session; using it keeps it alive.
    public func isValid(_ id: String, atMillis now: Int64) -> Bool {
        sessions.withLock { sessions in
            guard let last = sessions[id], now - last < Self.lifetime else {
                sessions[id] = nil
                return false
            }
            sessions[id] = now
            return true
        }
    }

    public func close(_ id: String) {
        _ = sessions.withLock { $0.removeValue(forKey: id) }
    }

    /// The session id in a `Cookie` header, if there is one.
    public static func id(inCookieHeader header: String?) -> String? {
        guard let header else { return nil }
        for part in header.split(separator: ";") {
            let pair = part.trimmingPrefix(while: { $0 == " " })
            if pair.hasPrefix(cookieName + "=") { return String(pair.dropFirst(cookieName.count + 1)) }
        }
        return nil
    }
}

extension String {
    fileprivate func leftPadded(to length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}
