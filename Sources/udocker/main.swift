// Entry point of the udocker command line.
print("udocker")
