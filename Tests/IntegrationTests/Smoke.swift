// Smoke test of the IntegrationTests target.
import Testing

@Test func IntegrationTestsBuilds() { #expect(Bool(true)) }
