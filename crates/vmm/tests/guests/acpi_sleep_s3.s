# The ACPI power-off guest of acpi_poweroff.s asking for S3 (suspend to RAM)
# instead of S5: a microVM does not sleep, so the write must be ignored.
    .set SLP_TYP, 3
    .include "acpi_poweroff.s"
