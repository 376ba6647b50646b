import NIOCore

/// Runs Swift tasks on one SwiftNIO event loop.
///
/// Why: a delivery worker running on the event loop that owns its HTTP connection hands the
/// request to the connection and gets the answer back on the same thread. On the cooperative
/// pool, every delivery costs two cross-thread wake-ups (pool → event loop to write the
/// request, event loop → pool to resume with the answer); with a burst of messages those
/// wake-ups, not HTTP, were most of the bridge's CPU (README, Benchmark).
public final class EventLoopTaskExecutor: TaskExecutor {
    public let eventLoop: any EventLoop

    public init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    /// One executor per event loop of `group`.
    public static func forEachLoop(of group: any EventLoopGroup) -> [EventLoopTaskExecutor] {
        group.makeIterator().map(EventLoopTaskExecutor.init)
    }
}
