// S1: Apptainer/Singularity found on the host runs the container's directory. (Being written.)

public struct SingularityEngine: ExecutionEngine {
    public let mode: ExecMode
    public let context: EngineContext
    public var identity: IdentitySupport { .hostOnly }

    public init(mode: ExecMode, context: EngineContext) {
        self.mode = mode
        self.context = context
    }

    public func prepare(_ plan: RunPlan) throws -> Launch {
        throw RuntimeError.notAvailable("execution mode \(mode) is not available yet")
    }
}
