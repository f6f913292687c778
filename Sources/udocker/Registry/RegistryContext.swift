// What registry commands take from the command context: where -D sends the HTTP client's (redacted)
// request and response lines.

extension CommandContext {
    /// Receives the HTTP client's lines when -D (or verbose_level 5) is on; secrets are already redacted.
    var httpDebug: (@Sendable (String) -> Void)? {
        guard output.level >= Output.debug else { return nil }
        return { line in Output.write(2, "Debug: " + line + "\n") }
    }
}
