import ServiceLifecycle

/// Holds a shared resource (the HTTP client, the store) open until graceful shutdown, then
/// closes it. Placed before the services that use it in the `ServiceGroup`, so it is closed
/// after they have stopped (services shut down in reverse order).
struct ResourceService: Service {
    let name: String
    let close: @Sendable () async -> Void

    func run() async throws {
        try? await gracefulShutdown()
        await close()
    }
}
