// Keeps the HDLabelClusterTests target buildable until its own tests land.
import XCTest
