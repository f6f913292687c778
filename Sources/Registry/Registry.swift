// The Registry module: placeholder file until its issue lands.
public enum RegistryModule { public static let name = "Registry" }
