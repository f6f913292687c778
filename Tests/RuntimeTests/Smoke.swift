// Smoke test of the RuntimeTests target.
import Testing

@Test func RuntimeTestsBuilds() { #expect(Bool(true)) }
