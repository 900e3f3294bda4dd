//! Tool arguments: what kind of value each one holds ([`ArgKind`]), how often legitimate calls
//! send it and in which argument shape ([`ArgSpec`]). A kind ties the argument to one agent habit;
//! the values themselves are generated in `values.rs`.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ArgKind {
    /// One of the listed strings; each agent uses only the first few (see
    /// `agent::enum_values_in_use`).
    Enum(&'static [&'static str]),
    /// One of the listed integers, the first most often.
    IntOneOf(&'static [i64]),
    /// Uniform integer in `lo..=hi`.
    IntRange(i64, i64),
    Bool {
        true_pct: u8,
    },
    /// One or a few distinct values from the list.
    SubsetOf(&'static [&'static str]),
    /// One of the agent's currencies.
    Currency,
    /// Amount in cents, as an integer, inside the agent's range.
    AmountCents,
    /// Amount in major currency units, never a whole number, inside the agent's range.
    AmountDecimal,
    /// Under the agent's customer-id prefix.
    CustomerId,
    /// One of the agent's connected accounts.
    AccountId,
    PaymentIntentId,
    /// Grows with the day, as ticket numbers do.
    TicketId,
    DealId,
    ContactId,
    EmployeeId,
    ExpenseId,
    /// Under the agent's page-id prefix.
    PageId,
    /// A calendar event id.
    EventId,
    /// An e-mail message id.
    MessageId,
    IdempotencyKey,
    Email(MailDomain),
    /// One address, mostly a partner's and sometimes a colleague's.
    Recipient,
    /// A list of addresses: all internal, or with `External` the first internal and the rest
    /// mostly partners'.
    Recipients(MailDomain),
    /// On one of the agent's API hosts, under its stable path prefix.
    Url,
    /// A file in one of the agent's read directories (or its write directory).
    ReadPath,
    /// A file in the agent's write directory.
    WritePath,
    /// One of the agent's read directories, or a monthly subdirectory of it.
    ReadDir,
    /// A source file path inside a repository.
    PathInRepo,
    Date,
    DateTime,
    Text(TextKind),
    /// A few of the agent's SSO groups.
    SsoGroups,
    /// A small `{source, priority}` object.
    Metadata,
    /// A JSON body for a webhook.
    WebhookPayload,
    SlackChannel,
    SlackThreadTs,
    /// One of the agent's repositories, `org/name`.
    Repo,
    /// Grows with the day from the agent's first PR number.
    PrNumber,
    Branch,
    Service,
    /// An image of the service being deployed.
    ContainerImage,
    WikiSpace,
    CalendarId,
    FirstName,
    LastName,
    /// The company of one of the agent's partners.
    Company,
    SqlQuery,
    // Never sent by legitimate calls; values are hostile when an attack injects them.
    InjectedBcc,
    InjectedReplyTo,
    InjectedAttachments,
    InjectedFlag,
    InjectedCallbackUrl,
    /// Never sent by legitimate calls; a few train calls carry a planted key in it.
    ApiKey,
}

impl ArgKind {
    /// An optional argument an attack can add to smuggle data out or escalate.
    pub(crate) fn is_injection_channel(self) -> bool {
        matches!(
            self,
            ArgKind::InjectedBcc
                | ArgKind::InjectedReplyTo
                | ArgKind::InjectedAttachments
                | ArgKind::InjectedFlag
                | ArgKind::InjectedCallbackUrl
        )
    }
}

/// Whose domain an e-mail address is in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum MailDomain {
    /// The fleet's own organisation.
    Internal,
    /// One of the agent's partners.
    External,
}

/// What a free-text argument reads like.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum TextKind {
    Subject,
    Body,
    SearchQuery,
    WebSearchQuery,
    TicketComment,
    ReviewComment,
    Title,
    Memo,
    Notes,
}

/// One of a tool's two argument shapes: get_customer takes a customer id (A) or an e-mail (B).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Shape {
    A,
    B,
}

pub(crate) struct ArgSpec {
    pub(crate) name: &'static str,
    pub(crate) kind: ArgKind,
    /// How often legitimate calls send it, in percent; 0 = in the schema but never sent, which
    /// makes it an injection channel.
    pub(crate) sent_pct: u8,
    /// `None`: in both shapes.
    pub(crate) only_in: Option<Shape>,
}

impl ArgSpec {
    pub(crate) fn is_sent(&self) -> bool {
        self.sent_pct > 0
    }
}

pub(crate) const fn arg(name: &'static str, kind: ArgKind, sent_pct: u8) -> ArgSpec {
    ArgSpec {
        name,
        kind,
        sent_pct,
        only_in: None,
    }
}

pub(crate) const fn shape_a_arg(name: &'static str, kind: ArgKind, sent_pct: u8) -> ArgSpec {
    ArgSpec {
        only_in: Some(Shape::A),
        ..arg(name, kind, sent_pct)
    }
}

pub(crate) const fn shape_b_arg(name: &'static str, kind: ArgKind, sent_pct: u8) -> ArgSpec {
    ArgSpec {
        only_in: Some(Shape::B),
        ..arg(name, kind, sent_pct)
    }
}
