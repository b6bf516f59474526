# The counting guest of counter.s with no wait between lines: its vCPU is
# almost always in the middle of an `out` to COM1, which is where a pause
# must not lose or replay a character (the snapshot tests pause it there).
    .set DELAY, 0
    .include "counter.s"
