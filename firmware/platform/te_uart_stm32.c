/* SPDX-License-Identifier: Apache-2.0 */
/* te_uart_stm32.c - polled driver for the STM32 U(S)ART on the board's ST-LINK virtual COM port,
 * 8N1, 16x oversampling, FIFO off. Two register layouts (reference-manual USART chapters):
 *  - V1, STM32F4 (RM0390/RM0090 "USART registers"): SR 0x00, DR 0x04, BRR 0x08, CR1 0x0C
 *    (UE bit 13, TE bit 3, RE bit 2); SR: RXNE bit 5, TC bit 6, TXE bit 7. BRR = f / baud.
 *  - V2, L4/L4+/G4/H7/U5 USART and LPUART (RM0351, RM0432, RM0440, RM0433, RM0456):
 *    CR1 0x00 (UE bit 0, RE bit 2, TE bit 3), CR3 0x08 (OVRDIS bit 12), BRR 0x0C, ISR 0x1C
 *    (RXNE bit 5, TC bit 6, TXE bit 7), RDR 0x24, TDR 0x28. USART: BRR = f / baud;
 *    LPUART: BRR = 256 * f / baud (must lie in 0x300..0xFFFFF).
 * Pins: peripheral clock and GPIO port clock on in RCC, both pins in alternate-function mode
 * (MODER = 10b) with TE_UART_AF in AFRL/AFRH, RX pulled up. */
#include "te_platform.h"
#include "te_regs.h"

#if defined(TE_UART_STM32_V1) || defined(TE_UART_STM32_V2) || defined(TE_UART_STM32_LPUART)

#if defined(TE_UART_STM32_V1)
#define TE_USART_SR (TE_UART_BASE + 0x00u)
#define TE_USART_RDR (TE_UART_BASE + 0x04u)
#define TE_USART_TDR (TE_UART_BASE + 0x04u)
#define TE_USART_BRR (TE_UART_BASE + 0x08u)
#define TE_USART_CR1 (TE_UART_BASE + 0x0Cu)
#define TE_USART_CR1_ENABLE ((1u << 13) | (1u << 3) | (1u << 2))
#else
#define TE_USART_CR1 (TE_UART_BASE + 0x00u)
#define TE_USART_CR3 (TE_UART_BASE + 0x08u)
#define TE_USART_BRR (TE_UART_BASE + 0x0Cu)
#define TE_USART_SR (TE_UART_BASE + 0x1Cu) /* ISR */
#define TE_USART_RDR (TE_UART_BASE + 0x24u)
#define TE_USART_TDR (TE_UART_BASE + 0x28u)
#define TE_USART_CR1_ENABLE ((1u << 0) | (1u << 3) | (1u << 2))
#endif
#define TE_USART_RXNE (1u << 5)
#define TE_USART_TC (1u << 6)
#define TE_USART_TXE (1u << 7)

#if defined(TE_UART_STM32_LPUART)
#define TE_USART_BRR_VALUE \
    ((uint32_t)((256ull * TE_UART_CLOCK_HZ + TE_UART_BAUD / 2u) / TE_UART_BAUD))
#else
#define TE_USART_BRR_VALUE ((TE_UART_CLOCK_HZ + TE_UART_BAUD / 2u) / TE_UART_BAUD)
#endif

#define TE_GPIO_BASE (TE_GPIOA_BASE + 0x400u * (TE_UART_GPIO_PORT))
#define TE_GPIO_MODER (TE_GPIO_BASE + 0x00u)
#define TE_GPIO_OSPEEDR (TE_GPIO_BASE + 0x08u)
#define TE_GPIO_PUPDR (TE_GPIO_BASE + 0x0Cu)
#define TE_GPIO_AFR(pin) (TE_GPIO_BASE + 0x20u + 4u * ((pin) >> 3))

static int te_uart_ready;

static void te_gpio_af(uint32_t pin, uint32_t pull)
{
    uint32_t shift2 = 2u * pin, shift4 = 4u * (pin & 7u);
    TE_REG(TE_GPIO_AFR(pin)) =
        (TE_REG(TE_GPIO_AFR(pin)) & ~(0xFu << shift4)) | ((uint32_t)TE_UART_AF << shift4);
    TE_REG(TE_GPIO_OSPEEDR) = (TE_REG(TE_GPIO_OSPEEDR) & ~(3u << shift2)) | (2u << shift2);
    TE_REG(TE_GPIO_PUPDR) = (TE_REG(TE_GPIO_PUPDR) & ~(3u << shift2)) | (pull << shift2);
    TE_REG(TE_GPIO_MODER) = (TE_REG(TE_GPIO_MODER) & ~(3u << shift2)) | (2u << shift2);
}

void te_uart_init(void)
{
    /* Clocks on; the read-back gives the two-cycle delay the RCC errata ask for before the
     * peripheral is touched. */
    TE_REG(TE_GPIO_RCC_EN_REG) |= 1u << TE_UART_GPIO_PORT;
    (void)TE_REG(TE_GPIO_RCC_EN_REG);
    TE_REG(TE_UART_RCC_EN_REG) |= 1u << TE_UART_RCC_EN_BIT;
    (void)TE_REG(TE_UART_RCC_EN_REG);

#if defined(TE_FAMILY_STM32L4P)
    /* RM0432 (PWR_CR2.IOSV): PG[15:2] are supplied by VDDIO2 and stay isolated until IOSV is
     * set. PWR needs its bus clock (RCC_APB1ENR1.PWREN, bit 28). */
    TE_REG(0x40021058u) |= 1u << 28;
    (void)TE_REG(0x40021058u);
    TE_REG(0x40007004u) |= 1u << 9;
#endif

    te_gpio_af(TE_UART_TX_PIN, 0u); /* no pull */
    te_gpio_af(TE_UART_RX_PIN, 1u); /* pull-up: line idles high if unconnected */

    TE_REG(TE_USART_CR1) = 0; /* BRR may only be written with the UART disabled */
#if !defined(TE_UART_STM32_V1)
    TE_REG(TE_USART_CR3) = 1u << 12; /* OVRDIS: an overrun never blocks reception */
#endif
    TE_REG(TE_USART_BRR) = TE_USART_BRR_VALUE;
    TE_REG(TE_USART_CR1) = TE_USART_CR1_ENABLE;
    te_uart_ready = 1;
}

void te_uart_putc(uint8_t c)
{
    if (!te_uart_ready) {
        return;
    }
    while ((TE_REG(TE_USART_SR) & TE_USART_TXE) == 0) {
    }
    TE_REG(TE_USART_TDR) = c;
}

int te_uart_try_getc(void)
{
    uint32_t sr;
    if (!te_uart_ready) {
        return -1;
    }
    sr = TE_REG(TE_USART_SR);
#if defined(TE_UART_STM32_V1)
    /* An overrun (ORE, bit 3) is cleared by this SR read followed by the DR read. */
    if (sr & ((1u << 3) | TE_USART_RXNE)) {
        uint32_t d = TE_REG(TE_USART_RDR);
        if (sr & TE_USART_RXNE) {
            return (int)(d & 0xFFu);
        }
    }
#else
    if (sr & TE_USART_RXNE) {
        return (int)(TE_REG(TE_USART_RDR) & 0xFFu);
    }
#endif
    return -1;
}

void te_uart_flush(void)
{
    if (!te_uart_ready) {
        return;
    }
    while ((TE_REG(TE_USART_SR) & TE_USART_TC) == 0) {
    }
}

#endif
