// Smoke test of the RegistryTests target.
import Testing

@Test func RegistryTestsBuilds() { #expect(Bool(true)) }
