import DTwinMQTT

/// How the broker answers `client`'s first connection: `nil` when it is accepted, else the
/// error (refused, TLS, unreachable). The client is started here and closed before returning.
public func connectionError(of client: MQTTClient) async throws -> MQTTError? {
    client.start()
    let outcome: MQTTError?
    do {
        try await client.waitUntilConnected(timeout: .seconds(10), failFast: true)
        outcome = nil
    } catch let error as MQTTError {
        outcome = error
    } catch {
        await client.close()
        throw error
    }
    await client.close()
    return outcome
}
