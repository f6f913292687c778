// F1-F4: Fakechroot (LD_PRELOAD) with the container's loader; F3/F4 use ELF files patched by
// `setup --execmode`. (Being written: see issue 5.)

public struct FakechrootEngine: ExecutionEngine {
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
