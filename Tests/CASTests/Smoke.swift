// Smoke test of the CASTests target.
import Testing

@Test func CASTestsBuilds() { #expect(Bool(true)) }
