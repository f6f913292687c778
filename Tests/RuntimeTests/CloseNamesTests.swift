// CloseNames: which container and image names a mistyped `run NAME` is offered.
import Runtime
import Testing

@Suite struct CloseNamesTests {
    @Test func editDistanceUpToTwoOrAPrefixCaseIgnored() {
        let names = ["mybox", "web", "database", "busybox:latest", "busybox", "2c4c76e5-8a3e-4a8b-9d0e-2a7f0b3c1d2e"]
        #expect(CloseNames.matching("mybx", among: names) == ["mybox"])
        #expect(CloseNames.matching("MyBox", among: names) == ["mybox"])
        #expect(CloseNames.matching("busybx", among: names) == ["busybox"])
        #expect(CloseNames.matching("data", among: names) == ["database"])
        #expect(CloseNames.matching("2c4c76e5", among: names) == ["2c4c76e5-8a3e-4a8b-9d0e-2a7f0b3c1d2e"])
        // Short names: one edit at most, and no prefix of fewer than 3 characters.
        #expect(CloseNames.matching("wbe", among: names) == [])
        #expect(CloseNames.matching("we", among: names) == ["web"])
        #expect(CloseNames.matching("my", among: names) == [])
        #expect(CloseNames.matching("zzzzzz", among: names) == [])
        #expect(CloseNames.matching("mybox", among: names) == [], "the name itself is not offered")
    }
}
