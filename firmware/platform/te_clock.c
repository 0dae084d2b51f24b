/* SPDX-License-Identifier: Apache-2.0 */
/* te_clock.c - te_clock_init(): the clock tree of each real board, from its internal HSI
 * oscillator (no dependence on the ST-LINK MCO or a crystal), to the part's rated speed with the
 * voltage range and flash wait states the reference manual asks for. Emulated boards leave the
 * clocks alone: QEMU does not model RCC/PWR/FLASH (register reads return 0, so a ready-bit poll
 * would never end) and runs the core at its fixed machine clock.
 *
 *   board          part         SYSCLK  HCLK    PCLK1/PCLK2  flash  source
 *   nucleo_f446re  STM32F446RE  180     180     45 / 90      5 WS   HSI16/8*180/2, over-drive
 *   nucleo_l476rg  STM32L476RG   80      80     80 / 80      4 WS   HSI16/1*10/2, range 1
 *   nucleo_l4r5zi  STM32L4R5ZI  120     120    120 / 120     5 WS   HSI16/1*15/2, range 1 boost
 *   nucleo_h743zi  STM32H743ZI  400     200    100 / 100     2 WS   HSI64/4*50/2, VOS1
 *   nucleo_g474re  STM32G474RE  170     170    170 / 170     4 WS   HSI16/4*85/2, range 1 boost
 *   nucleo_u575zi  STM32U575ZI  160     160    160 / 160     4 WS   HSI16/1*20/2, range 1 + EPOD
 * (MHz). Register offsets and bit positions are from each part's reference manual; the register
 * or section title is named next to each step. */
#include "te_platform.h"
#include "te_regs.h"

/* Set FLASH_ACR.LATENCY (low 4 bits, or `mask`) plus `extra` bits, keeping the others (G4 keeps
 * DBG_SWEN there), and read back until the new latency is in effect. */
static void te_flash_latency(uint32_t acr, uint32_t mask, uint32_t latency, uint32_t extra)
{
    TE_REG(acr) = (TE_REG(acr) & ~mask) | latency | extra;
    TE_WAIT(acr, mask, latency);
}

static void te_delay_loops(uint32_t n)
{
    volatile uint32_t i;
    for (i = 0; i < n; ++i) {
    }
}

/* ------------------------------------------------------------------------------------------ */
#if TE_EMULATED || defined(TE_FAMILY_MPS2)

void te_clock_init(void)
{
    (void)te_flash_latency;
    (void)te_delay_loops;
}

/* ------------------------------------------------------------------------------------------ */
#elif defined(TE_FAMILY_STM32F4)
/* RM0390 (STM32F446): RCC 0x40023800, PWR 0x40007000, FLASH 0x40023C00. */
#define RCC_CR 0x40023800u
#define RCC_PLLCFGR 0x40023804u
#define RCC_CFGR 0x40023808u
#define RCC_APB1ENR 0x40023840u
#define PWR_CR 0x40007000u
#define PWR_CSR 0x40007004u
#define FLASH_ACR 0x40023C00u

void te_clock_init(void)
{
    (void)te_delay_loops;
    /* PWR_CR: VOS = scale 1 (only writable while the PLL is off). */
    TE_REG(RCC_APB1ENR) |= 1u << 28; /* PWREN */
    (void)TE_REG(RCC_APB1ENR);
    TE_REG(PWR_CR) = (TE_REG(PWR_CR) & ~(3u << 14)) | (3u << 14);
    /* RCC_PLLCFGR: HSI (on at reset) / M=8 = 2 MHz, x N=180 = VCO 360 MHz, / P=2 = 180 MHz,
     * Q=8, R=2 (unused outputs kept in range). */
    TE_REG(RCC_PLLCFGR) = 8u | (180u << 6) | (0u << 16) | (0u << 22) | (8u << 24) | (2u << 28);
    TE_REG(RCC_CR) |= 1u << 24; /* PLLON */
    /* PWR section "Entering Over-drive mode": ODEN, wait ODRDY, ODSWEN, wait ODSWRDY (PLL on, system
     * clock still HSI) - needed above 168 MHz. */
    TE_REG(PWR_CR) |= 1u << 16;
    TE_WAIT(PWR_CSR, 1u << 16, 1u << 16);
    TE_REG(PWR_CR) |= 1u << 17;
    TE_WAIT(PWR_CSR, 1u << 17, 1u << 17);
    /* Flash section "Relation between CPU clock frequency and flash memory read time": 5 wait
     * states for 150 < HCLK <= 180 MHz at 2.7-3.6 V; prefetch, I/D cache on. */
    te_flash_latency(FLASH_ACR, 0xFu, 5u, (1u << 8) | (1u << 9) | (1u << 10));
    /* RCC_CFGR: AHB /1, APB1 /4 (45 MHz max), APB2 /2 (90 MHz max). */
    TE_REG(RCC_CFGR) = (TE_REG(RCC_CFGR) & ~0xFCF0u) | (5u << 10) | (4u << 13);
    TE_WAIT(RCC_CR, 1u << 25, 1u << 25);              /* PLLRDY */
    TE_REG(RCC_CFGR) = (TE_REG(RCC_CFGR) & ~3u) | 2u; /* SW = PLL_P */
    TE_WAIT(RCC_CFGR, 3u << 2, 2u << 2);
}

/* ------------------------------------------------------------------------------------------ */
#elif defined(TE_FAMILY_STM32L4) || defined(TE_FAMILY_STM32L4P) || defined(TE_FAMILY_STM32G4)
/* RM0351 (L476), RM0432 (L4R5), RM0440 (G474): same RCC/PWR/FLASH layout.
 * RCC 0x40021000, PWR 0x40007000, FLASH 0x40022000. */
#define RCC_CR 0x40021000u
#define RCC_CFGR 0x40021008u
#define RCC_PLLCFGR 0x4002100Cu
#define RCC_APB1ENR1 0x40021058u
#define PWR_SR2 0x40007014u
#define PWR_CR5 0x40007080u
#define FLASH_ACR 0x40022000u

#if defined(TE_FAMILY_STM32L4)
#define TE_PLL_M 1u
#define TE_PLL_N 10u
#define TE_FLASH_WS 4u /* RM0351 "Read access latency": range 1, 64 < HCLK <= 80 MHz */
#define TE_BOOST 0
#elif defined(TE_FAMILY_STM32L4P)
#define TE_PLL_M 1u
#define TE_PLL_N 15u
#define TE_FLASH_WS 5u /* RM0432 "Read access latency": range 1 boost, 100 < HCLK <= 120 */
#define TE_BOOST 1
#else
#define TE_PLL_M 4u
#define TE_PLL_N 85u
#define TE_FLASH_WS 4u /* RM0440 "Read access latency": range 1 boost, 136 < HCLK <= 170 */
#define TE_BOOST 1
#endif

void te_clock_init(void)
{
    TE_REG(RCC_APB1ENR1) |= 1u << 28; /* PWREN */
    (void)TE_REG(RCC_APB1ENR1);
    /* RCC_CR: HSI16 on (L4 boots from MSI 4 MHz; G4 from HSI16 already). */
    TE_REG(RCC_CR) |= 1u << 8;
    TE_WAIT(RCC_CR, 1u << 10, 1u << 10);
#if TE_BOOST
    /* PWR section "Dynamic voltage scaling management", range 1 normal -> boost mode (RM0432,
     * RM0440): AHB divided by 2 before the switch to > 80 MHz, R1MODE cleared, wait VOSF,
     * raise the wait states, switch, wait 1 us, then AHB /1. Range 1 is the reset state. */
    TE_REG(RCC_CFGR) = (TE_REG(RCC_CFGR) & ~(0xFu << 4)) | (8u << 4);
    TE_REG(PWR_CR5) &= ~(1u << 8);
    TE_WAIT(PWR_SR2, 1u << 10, 0u);
#endif
    /* FLASH_ACR: wait states, prefetch, instruction and data cache. */
    te_flash_latency(FLASH_ACR, 0xFu, TE_FLASH_WS, (1u << 8) | (1u << 9) | (1u << 10));
    /* RCC_PLLCFGR: source HSI16, PLLM = M-1 at bit 4, PLLN at bit 8, PLLR = /2 (0 at bit 25),
     * PLLREN (bit 24) enables the R output that feeds SYSCLK. VCO input 16/M MHz, output 16/M*N. */
    TE_REG(RCC_PLLCFGR) = 2u | ((TE_PLL_M - 1u) << 4) | (TE_PLL_N << 8) | (1u << 24);
    TE_REG(RCC_CR) |= 1u << 24; /* PLLON */
    TE_WAIT(RCC_CR, 1u << 25, 1u << 25);
    /* RCC_CFGR: APB1 /1, APB2 /1, SW = PLL (3). */
    TE_REG(RCC_CFGR) = (TE_REG(RCC_CFGR) & ~((7u << 8) | (7u << 11) | 3u)) | 3u;
    TE_WAIT(RCC_CFGR, 3u << 2, 3u << 2);
#if TE_BOOST
    te_delay_loops(200u); /* >= 1 us at HCLK <= 85 MHz */
    TE_REG(RCC_CFGR) &= ~(0xFu << 4);
#else
    (void)te_delay_loops;
#endif
}

/* ------------------------------------------------------------------------------------------ */
#elif defined(TE_FAMILY_STM32H7)
/* RM0433 (STM32H743): PWR 0x58024800, RCC 0x58024400, FLASH 0x52002000.
 * 400 MHz is the VOS1 maximum on every silicon revision (rev V reaches 480 MHz only in VOS0). */
#define PWR_CSR1 0x58024804u
#define PWR_CR3 0x5802480Cu
#define PWR_D3CR 0x58024818u
#define RCC_CR 0x58024400u
#define RCC_CFGR 0x58024410u
#define RCC_D1CFGR 0x58024418u
#define RCC_D2CFGR 0x5802441Cu
#define RCC_D3CFGR 0x58024420u
#define RCC_PLLCKSELR 0x58024428u
#define RCC_PLLCFGR 0x5802442Cu
#define RCC_PLL1DIVR 0x58024430u
#define FLASH_ACR 0x52002000u

void te_clock_init(void)
{
    (void)te_delay_loops;
    /* PWR section "Power supply configuration", PWR_CR3: LDO supply (LDOEN=1, BYPASS=0); the write clears SCUEN and locks the
     * supply configuration. Wait ACTVOSRDY (PWR_CSR1 bit 13). */
    TE_REG(PWR_CR3) = (TE_REG(PWR_CR3) & ~7u) | (1u << 1);
    TE_WAIT(PWR_CSR1, 1u << 13, 1u << 13);
    /* PWR_D3CR: VOS = scale 1 (11b), wait VOSRDY (bit 13). */
    TE_REG(PWR_D3CR) = (TE_REG(PWR_D3CR) & ~(3u << 14)) | (3u << 14);
    TE_WAIT(PWR_D3CR, 1u << 13, 1u << 13);
    /* FLASH table "recommended number of wait states and programming delay": VOS1,
     * 185 < ACLK <= 210 MHz: 2 wait states, WRHIGHFREQ = 10b. */
    te_flash_latency(FLASH_ACR, 0x3Fu, 2u | (2u << 4), 0u);
    /* RCC_D1CFGR/D2CFGR/D3CFGR: CPU /1 (400), HPRE /2 (AXI/AHB 200), APB1..4 /2 (100 MHz). */
    TE_REG(RCC_D1CFGR) = (0u << 8) | (4u << 4) | 8u;
    TE_REG(RCC_D2CFGR) = (4u << 8) | (4u << 4);
    TE_REG(RCC_D3CFGR) = 4u << 4;
    /* RCC_PLLCKSELR: PLLSRC = HSI (64 MHz at reset), DIVM1 = 4 -> 16 MHz reference. */
    TE_REG(RCC_PLLCKSELR) = (TE_REG(RCC_PLLCKSELR) & ~((0x3Fu << 4) | 3u)) | (4u << 4);
    /* RCC_PLLCFGR: PLL1RGE = 8..16 MHz (11b), wide VCO, integer mode, DIVP1EN only. */
    TE_REG(RCC_PLLCFGR) = (TE_REG(RCC_PLLCFGR) & ~(0xFu | (7u << 16))) | (3u << 2) | (1u << 16);
    /* RCC_PLL1DIVR: N = 50 (VCO 800 MHz), P = Q = R = 2 (fields hold value - 1). */
    TE_REG(RCC_PLL1DIVR) = (50u - 1u) | (1u << 9) | (1u << 16) | (1u << 24);
    TE_REG(RCC_CR) |= 1u << 24; /* PLL1ON */
    TE_WAIT(RCC_CR, 1u << 25, 1u << 25);
    /* RCC_CFGR: SW = PLL1 (011b), wait SWS. */
    TE_REG(RCC_CFGR) = (TE_REG(RCC_CFGR) & ~7u) | 3u;
    TE_WAIT(RCC_CFGR, 7u << 3, 3u << 3);
}

/* ------------------------------------------------------------------------------------------ */
#elif defined(TE_FAMILY_STM32U5)
/* RM0456 (STM32U575), non-secure aliases (TrustZone disabled, the shipping state):
 * RCC 0x46020C00, PWR 0x46020800, FLASH 0x40022000, ICACHE 0x40030400. */
#define RCC_CR 0x46020C00u
#define RCC_CFGR1 0x46020C1Cu
#define RCC_CFGR2 0x46020C20u
#define RCC_PLL1CFGR 0x46020C28u
#define RCC_PLL1DIVR 0x46020C34u
#define RCC_AHB3ENR 0x46020C94u
#define PWR_VOSR 0x4602080Cu
#define FLASH_ACR 0x40022000u
#define ICACHE_CR 0x40030400u

void te_clock_init(void)
{
    TE_REG(RCC_AHB3ENR) |= 1u << 2; /* PWREN */
    (void)TE_REG(RCC_AHB3ENR);
    TE_REG(RCC_CR) |= 1u << 8; /* HSION (boots from MSIS 4 MHz) */
    TE_WAIT(RCC_CR, 1u << 10, 1u << 10);
    /* RCC_PLL1CFGR: source HSI16 (10b), PLL1RGE 8..16 MHz (11b), M = 1, MBOOST = /1 (the
     * EPOD booster input, HSI16, must be <= 16 MHz), PLL1REN. Set before BOOSTEN so the booster
     * has its clock. */
    TE_REG(RCC_PLL1CFGR) = 2u | (3u << 2) | (0u << 8) | (0u << 12) | (1u << 18);
    /* PWR_VOSR (section "Dynamic voltage scaling management"): range 1 (VOS = 11b) and EPOD booster on (needed above 55 MHz); wait VOSRDY
     * (bit 15) and BOOSTRDY (bit 14). */
    TE_REG(PWR_VOSR) = (TE_REG(PWR_VOSR) & ~(3u << 16)) | (3u << 16) | (1u << 18);
    TE_WAIT(PWR_VOSR, (1u << 15) | (1u << 14), (1u << 15) | (1u << 14));
    /* FLASH "Read access latency": range 1, 128 < HCLK <= 160 MHz: 4 wait states; prefetch. */
    te_flash_latency(FLASH_ACR, 0xFu, 4u, 1u << 8);
    /* RCC_PLL1DIVR: N = 20 (VCO 320 MHz), P = Q = R = 2 (value - 1 in each field). */
    TE_REG(RCC_PLL1DIVR) = (20u - 1u) | (1u << 9) | (1u << 16) | (1u << 24);
    TE_REG(RCC_CR) |= 1u << 24; /* PLL1ON */
    TE_WAIT(RCC_CR, 1u << 25, 1u << 25);
    /* Switch through AHB /2 and wait 1 us before /1, as for any jump above 80 MHz; APB1/2/3
     * stay /1 (RCC_CFGR2 PPRE1/PPRE2, RCC_CFGR3 PPRE3 reset values). */
    TE_REG(RCC_CFGR2) = (TE_REG(RCC_CFGR2) & ~0xFu) | 8u;
    TE_REG(RCC_CFGR1) = (TE_REG(RCC_CFGR1) & ~3u) | 3u; /* SW = PLL1 */
    TE_WAIT(RCC_CFGR1, 3u << 2, 3u << 2);
    te_delay_loops(200u);
    TE_REG(RCC_CFGR2) &= ~0xFu;
    /* ICACHE (RM0456 ICACHE_CR.EN): caches flash fetches; without it every fetch waits 4 WS. */
    TE_REG(ICACHE_CR) |= 1u;
}

#else
#error "te_clock.c: no clock code for this board family"
#endif
