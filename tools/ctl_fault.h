/* byolctl's report of a fatal signal or exit() inside plugin code (ctl_fault.c). */
#ifndef BYOL_CTL_FAULT_H
#define BYOL_CTL_FAULT_H

/* Install the handlers; call once, early in main. */
void ctl_fault_install(void);

#endif
