// R1-R3: runc or crun rootless; R2/R3 run PRoot inside. (Being written: see issue 5.)

public struct RuncEngine: ExecutionEngine {
    public let mode: ExecMode
    public let context: EngineContext
    public var identity: IdentitySupport { .any }

    public init(mode: ExecMode, context: EngineContext) {
        self.mode = mode
        self.context = context
    }

    public func prepare(_ plan: RunPlan) throws -> Launch {
        throw RuntimeError.notAvailable("execution mode \(mode) is not available yet")
    }
}
