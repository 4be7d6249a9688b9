import HDLabelCore
print("hdlabel")
