import ServiceLifecycle

/// Runs `body` every `interval`, with a state of its own, until graceful shutdown or
/// cancellation: the loop of the bridge's periodic services.
func periodically<State: Sendable>(
    every interval: Duration, state initial: State, _ body: @escaping @Sendable (inout State) async -> Void
) async {
    try? await cancelWhenGracefulShutdown {
        var state = initial
        while !Task.isCancelled {
            try await Task.sleep(for: interval)
            await body(&state)
        }
    }
}
