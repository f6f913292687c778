// The Runtime module: placeholder file until its issue lands.
public enum RuntimeModule { public static let name = "Runtime" }
