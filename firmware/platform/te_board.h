/* SPDX-License-Identifier: Apache-2.0 */
/* te_board.h - board selection: turns one -DTE_BOARD_<NAME> define into the facts the platform
 * code needs (core features, clock, UART registers and pins, cycle counter).
 *
 * The same facts live in boards/<name>.toml for the Python side; tests/test_platform.py checks
 * that the numbers here (TE_CPU_HZ, TE_UART_BASE, TE_UART_BAUD, TE_UART_CLOCK_HZ, pins, AF)
 * agree with the TOML file, so edit both together.
 *
 * Families: TE_FAMILY_MPS2 (QEMU CMSDK boards), TE_FAMILY_STM32F4, _STM32L4, _STM32L4P (L4+),
 * _STM32H7, _STM32G4, _STM32U5. UART kinds: TE_UART_CMSDK, TE_UART_STM32_V1 (F4: SR/DR),
 * TE_UART_STM32_V2 (ISR/RDR/TDR), TE_UART_STM32_LPUART (V2 layout, BRR = 256*f/baud).
 * Cycle counters: TE_CYCLES_DWT, TE_CYCLES_CMSDK_TIMER, TE_CYCLES_SYSTICK.
 */
#ifndef TE_BOARD_H
#define TE_BOARD_H

/* ---------------------------------------------------------------- emulated (QEMU) boards */
#if defined(TE_BOARD_QEMU_MPS2_AN386)
#define TE_BOARD_NAME "qemu_mps2_an386"
#define TE_FAMILY_MPS2 1
#define TE_EMULATED 1
#define TE_HAS_FPU 1
#define TE_CPU_HZ 25000000u
#define TE_UART_CMSDK 1
#define TE_UART_BASE 0x40004000u /* UART0, QEMU's first serial port */
#define TE_UART_CLOCK_HZ 25000000u
#define TE_CYCLES_CMSDK_TIMER 1
#define TE_CYCLES_TIMER_BASE 0x40000000u /* TIMER0 */

#elif defined(TE_BOARD_QEMU_MPS2_AN500)
#define TE_BOARD_NAME "qemu_mps2_an500"
#define TE_FAMILY_MPS2 1
#define TE_EMULATED 1
#define TE_HAS_FPU 1
#define TE_CPU_HZ 25000000u
#define TE_UART_CMSDK 1
#define TE_UART_BASE 0x40004000u
#define TE_UART_CLOCK_HZ 25000000u
#define TE_CYCLES_CMSDK_TIMER 1
#define TE_CYCLES_TIMER_BASE 0x40000000u

#elif defined(TE_BOARD_QEMU_MPS2_AN505)
/* SSE-200: the CPU boots Secure, so peripherals are used through their Secure alias
 * (address | 0x10000000): UART0 0x40200000 -> 0x50200000, TIMER0 0x40000000 -> 0x50000000. */
#define TE_BOARD_NAME "qemu_mps2_an505"
#define TE_FAMILY_MPS2 1
#define TE_EMULATED 1
#define TE_HAS_FPU 1
#define TE_CPU_HZ 20000000u
#define TE_UART_CMSDK 1
#define TE_UART_BASE 0x50200000u
#define TE_UART_CLOCK_HZ 20000000u
#define TE_CYCLES_CMSDK_TIMER 1
#define TE_CYCLES_TIMER_BASE 0x50000000u

#elif defined(TE_BOARD_QEMU_NETDUINOPLUS2)
/* STM32F405 in QEMU: RCC, GPIO and flash interface are unimplemented there, so the clock tree
 * is not touched (QEMU runs the core at 168 MHz); the USART1 driver is the real F4 one. */
#define TE_BOARD_NAME "qemu_netduinoplus2"
#define TE_FAMILY_STM32F4 1
#define TE_EMULATED 1
#define TE_HAS_FPU 1
#define TE_CPU_HZ 168000000u
#define TE_UART_STM32_V1 1
#define TE_UART_BASE 0x40011000u   /* USART1 on APB2 */
#define TE_UART_CLOCK_HZ 84000000u /* APB2 = HCLK/2 */
#define TE_UART_GPIO_PORT 0        /* PA9 TX, PA10 RX, AF7 */
#define TE_UART_TX_PIN 9
#define TE_UART_RX_PIN 10
#define TE_UART_AF 7
#define TE_UART_RCC_EN_REG 0x40023844u /* RCC_APB2ENR */
#define TE_UART_RCC_EN_BIT 4           /* USART1EN */
#define TE_GPIO_RCC_EN_REG 0x40023830u /* RCC_AHB1ENR, bit n = GPIOn */
#define TE_CYCLES_SYSTICK 1

/* ---------------------------------------------------------------- real boards */
#elif defined(TE_BOARD_NUCLEO_F446RE)
#define TE_BOARD_NAME "nucleo_f446re"
#define TE_FAMILY_STM32F4 1
#define TE_HAS_FPU 1
#define TE_CPU_HZ 180000000u
#define TE_UART_STM32_V1 1
#define TE_UART_BASE 0x40004400u   /* USART2 on APB1 (ST-LINK VCP) */
#define TE_UART_CLOCK_HZ 45000000u /* APB1 = HCLK/4 */
#define TE_UART_GPIO_PORT 0        /* PA2 TX, PA3 RX, AF7 */
#define TE_UART_TX_PIN 2
#define TE_UART_RX_PIN 3
#define TE_UART_AF 7
#define TE_UART_RCC_EN_REG 0x40023840u /* RCC_APB1ENR */
#define TE_UART_RCC_EN_BIT 17          /* USART2EN */
#define TE_GPIO_RCC_EN_REG 0x40023830u /* RCC_AHB1ENR */
#define TE_CYCLES_DWT 1

#elif defined(TE_BOARD_NUCLEO_L476RG)
#define TE_BOARD_NAME "nucleo_l476rg"
#define TE_FAMILY_STM32L4 1
#define TE_HAS_FPU 1
#define TE_CPU_HZ 80000000u
#define TE_UART_STM32_V2 1
#define TE_UART_BASE 0x40004400u   /* USART2 on APB1 (ST-LINK VCP) */
#define TE_UART_CLOCK_HZ 80000000u /* PCLK1 = HCLK */
#define TE_UART_GPIO_PORT 0        /* PA2 TX, PA3 RX, AF7 */
#define TE_UART_TX_PIN 2
#define TE_UART_RX_PIN 3
#define TE_UART_AF 7
#define TE_UART_RCC_EN_REG 0x40021058u /* RCC_APB1ENR1 */
#define TE_UART_RCC_EN_BIT 17          /* USART2EN */
#define TE_GPIO_RCC_EN_REG 0x4002104Cu /* RCC_AHB2ENR */
#define TE_CYCLES_DWT 1

#elif defined(TE_BOARD_NUCLEO_L4R5ZI)
#define TE_BOARD_NAME "nucleo_l4r5zi"
#define TE_FAMILY_STM32L4P 1
#define TE_HAS_FPU 1
#define TE_CPU_HZ 120000000u
#define TE_UART_STM32_LPUART 1
#define TE_UART_BASE 0x40008000u    /* LPUART1 (ST-LINK VCP on NUCLEO-144 L4R5ZI) */
#define TE_UART_CLOCK_HZ 120000000u /* PCLK1 = HCLK, LPUART1SEL = PCLK */
#define TE_UART_GPIO_PORT 6         /* PG7 TX, PG8 RX, AF8; port G needs VDDIO2 (PWR_CR2.IOSV) */
#define TE_UART_TX_PIN 7
#define TE_UART_RX_PIN 8
#define TE_UART_AF 8
#define TE_UART_RCC_EN_REG 0x4002105Cu /* RCC_APB1ENR2 */
#define TE_UART_RCC_EN_BIT 0           /* LPUART1EN */
#define TE_GPIO_RCC_EN_REG 0x4002104Cu /* RCC_AHB2ENR */
#define TE_CYCLES_DWT 1

#elif defined(TE_BOARD_NUCLEO_H743ZI)
#define TE_BOARD_NAME "nucleo_h743zi"
#define TE_FAMILY_STM32H7 1
#define TE_HAS_FPU 1
#define TE_HAS_CACHE 1
#define TE_CPU_HZ 400000000u
#define TE_UART_STM32_V2 1
#define TE_UART_BASE 0x40004800u    /* USART3 (ST-LINK VCP) */
#define TE_UART_CLOCK_HZ 100000000u /* rcc_pclk1 = 100 MHz (default USART234578SEL) */
#define TE_UART_GPIO_PORT 3         /* PD8 TX, PD9 RX, AF7 */
#define TE_UART_TX_PIN 8
#define TE_UART_RX_PIN 9
#define TE_UART_AF 7
#define TE_UART_RCC_EN_REG 0x580244E8u /* RCC_APB1LENR */
#define TE_UART_RCC_EN_BIT 18          /* USART3EN */
#define TE_GPIO_RCC_EN_REG 0x580244E0u /* RCC_AHB4ENR */
#define TE_CYCLES_DWT 1

#elif defined(TE_BOARD_NUCLEO_G474RE)
#define TE_BOARD_NAME "nucleo_g474re"
#define TE_FAMILY_STM32G4 1
#define TE_HAS_FPU 1
#define TE_CPU_HZ 170000000u
#define TE_UART_STM32_LPUART 1
#define TE_UART_BASE 0x40008000u    /* LPUART1 (ST-LINK VCP on NUCLEO-G474RE) */
#define TE_UART_CLOCK_HZ 170000000u /* PCLK1 = HCLK, LPUART1SEL = PCLK */
#define TE_UART_GPIO_PORT 0         /* PA2 TX, PA3 RX, AF12 */
#define TE_UART_TX_PIN 2
#define TE_UART_RX_PIN 3
#define TE_UART_AF 12
#define TE_UART_RCC_EN_REG 0x4002105Cu /* RCC_APB1ENR2 */
#define TE_UART_RCC_EN_BIT 0           /* LPUART1EN */
#define TE_GPIO_RCC_EN_REG 0x4002104Cu /* RCC_AHB2ENR */
#define TE_CYCLES_DWT 1

#elif defined(TE_BOARD_NUCLEO_U575ZI)
#define TE_BOARD_NAME "nucleo_u575zi"
#define TE_FAMILY_STM32U5 1
#define TE_HAS_FPU 1
#define TE_CPU_HZ 160000000u
#define TE_UART_STM32_V2 1
#define TE_UART_BASE 0x40013800u    /* USART1, non-secure alias (ST-LINK VCP) */
#define TE_UART_CLOCK_HZ 160000000u /* PCLK2 = HCLK, USART1SEL = PCLK2 */
#define TE_UART_GPIO_PORT 0         /* PA9 TX, PA10 RX, AF7 */
#define TE_UART_TX_PIN 9
#define TE_UART_RX_PIN 10
#define TE_UART_AF 7
#define TE_UART_RCC_EN_REG 0x46020CA4u /* RCC_APB2ENR */
#define TE_UART_RCC_EN_BIT 14          /* USART1EN */
#define TE_GPIO_RCC_EN_REG 0x46020C8Cu /* RCC_AHB2ENR1 */
#define TE_CYCLES_DWT 1

#else
#error \
    "no board selected: compile with -DTE_BOARD_<NAME>, e.g. -DTE_BOARD_NUCLEO_F446RE (see firmware/platform/README.md)"
#endif

/* ---------------------------------------------------------------- defaults */
#ifndef TE_EMULATED
#define TE_EMULATED 0
#endif
#ifndef TE_HAS_FPU
#define TE_HAS_FPU 0
#endif
#ifndef TE_HAS_CACHE
#define TE_HAS_CACHE 0
#endif
#ifndef TE_UART_BAUD
#define TE_UART_BAUD 115200u
#endif

/* GPIO port A base per family; ports are 0x400 apart on every STM32 used here. */
#if defined(TE_FAMILY_STM32F4)
#define TE_GPIOA_BASE 0x40020000u
#elif defined(TE_FAMILY_STM32L4) || defined(TE_FAMILY_STM32L4P) || defined(TE_FAMILY_STM32G4)
#define TE_GPIOA_BASE 0x48000000u
#elif defined(TE_FAMILY_STM32H7)
#define TE_GPIOA_BASE 0x58020000u
#elif defined(TE_FAMILY_STM32U5)
#define TE_GPIOA_BASE 0x42020000u /* non-secure alias */
#endif

/* What te_cycles_now() counts. Under QEMU -icount shift=N every instruction advances virtual
 * time by 2^N ns, so timer ticks are an instruction count, not cycles. */
#if defined(TE_CYCLES_DWT)
#define TE_CYCLES_UNIT "cycles"
#define TE_CYCLES_HZ TE_CPU_HZ
#elif defined(TE_CYCLES_CMSDK_TIMER)
#define TE_CYCLES_UNIT "cmsdk_timer_ticks"
#define TE_CYCLES_HZ TE_CPU_HZ
#elif defined(TE_CYCLES_SYSTICK)
#define TE_CYCLES_UNIT "systick_ticks"
#define TE_CYCLES_HZ TE_CPU_HZ
#endif

#endif /* TE_BOARD_H */
