import GRDB
import GRDBSQLite

/// The values of one run of a prepared statement, bound with SQLite's own calls in column order.
///
/// GRDB's generic binding (`StatementArguments` of `DatabaseValue`s) is the right tool almost
/// everywhere; on the paths every device message takes (the spool's insert and delete, the local
/// twin table's insert) it cost more than SQLite's own work on the row: about 30,000 instructions
/// a message for six columns (callgrind, issue 22). The first failing call is kept, and the
/// statement is not stepped after it.
public struct DirectBindings {
    let handle: OpaquePointer
    var index: Int32 = 0
    var code = SQLITE_OK

    init(_ handle: OpaquePointer) { self.handle = handle }

    /// Text, copied by SQLite. An empty string is empty text, never NULL.
    public mutating func bind(_ text: String) {
        next { handle, index in
            var text = text
            return text.withUTF8 { bytes in
                bytes.withMemoryRebound(to: CChar.self) { chars in
                    // A zero-length text needs a non-nil pointer, or SQLite binds NULL.
                    chars.isEmpty
                        ? sqlite3_bind_text(handle, index, "", 0, Self.transient)
                        : sqlite3_bind_text(handle, index, chars.baseAddress, Int32(chars.count), Self.transient)
                }
            }
        }
    }

    /// Text, or NULL.
    public mutating func bind(_ text: String?) {
        if let text { bind(text) } else { bindNull() }
    }

    /// Bytes as a BLOB, copied by SQLite. No bytes are an empty BLOB, never NULL.
    public mutating func bind(blob bytes: [UInt8]) {
        next { handle, index in
            bytes.withUnsafeBytes { raw in
                raw.isEmpty
                    ? sqlite3_bind_zeroblob(handle, index, 0)
                    : sqlite3_bind_blob(handle, index, raw.baseAddress, Int32(raw.count), Self.transient)
            }
        }
    }

    public mutating func bind(_ integer: Int64) {
        next { sqlite3_bind_int64($0, $1, integer) }
    }

    /// An integer, or NULL.
    public mutating func bind(_ integer: Int64?) {
        if let integer { bind(integer) } else { bindNull() }
    }

    /// A real, or NULL.
    public mutating func bind(_ real: Double?) {
        guard let real else { return bindNull() }
        next { sqlite3_bind_double($0, $1, real) }
    }

    public mutating func bindNull() {
        next { sqlite3_bind_null($0, $1) }
    }

    /// Binds the next column with `call(statement, column)`, unless a call failed already.
    private mutating func next(_ call: (OpaquePointer, Int32) -> Int32) {
        index += 1
        if code == SQLITE_OK { code = call(handle, index) }
    }

    /// SQLite copies what is bound this way before the call returns.
    static let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
}

extension Database {
    /// Runs the cached statement `sql` once to its end (an INSERT, a DELETE) with the values
    /// `bind` gives it; a failure is SQLite's, in its words, as GRDB reports it. Afterwards
    /// `lastInsertedRowID` and `changesCount` say what the run did.
    public func runCached(_ sql: String, binding bind: (inout DirectBindings) -> Void) throws {
        let handle = try cachedStatement(sql: sql).sqliteStatement
        // A statement GRDB or an earlier failure left mid-run starts again; left reset after,
        // it holds no read lock while it waits for the next run.
        sqlite3_reset(handle)
        defer { sqlite3_reset(handle) }
        var bindings = DirectBindings(handle)
        bind(&bindings)
        var code = bindings.code
        if code == SQLITE_OK { code = sqlite3_step(handle) }
        guard code == SQLITE_DONE else {
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(sqliteConnection)), sql: sql)
        }
    }
}

extension Database {
    /// `body` in one transaction (`BEGIN IMMEDIATE` … `COMMIT`, rolled back when it throws),
    /// begun and committed with cached statements; call it inside `writeWithoutTransaction`.
    /// GRDB's `write` prepares its BEGIN and COMMIT anew for every transaction: about 14,000
    /// instructions each, more than many of the transactions they wrap (callgrind, issue 22).
    public func inCachedTransaction<T>(_ body: () throws -> T) throws -> T {
        try runCached("BEGIN IMMEDIATE") { _ in }
        do {
            let result = try body()
            try runCached("COMMIT") { _ in }
            return result
        } catch {
            // Some failures (a full disk) roll back on their own; a failed COMMIT (busy) does not.
            if isInsideTransaction { try? execute(sql: "ROLLBACK") }
            throw error
        }
    }
}
