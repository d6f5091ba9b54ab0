//! What the connector tests share: a directory user to grant to.

use steward_domain::directory::User;
use steward_domain::enums::UserType;
use steward_domain::ids::UserId;
use steward_domain::text::DisplayName;

/// A member user with this user principal name and, if given, mail address.
pub fn person(upn: &str, mail: Option<&str>) -> User {
    User {
        id: UserId::new(),
        display_name: DisplayName::parse("Test person").unwrap(),
        user_principal_name: upn.to_owned(),
        mail: mail.map(str::to_owned),
        user_type: UserType::Member,
        account_enabled: true,
        department: None,
        job_title: None,
        company_name: None,
        employee_id: None,
        city: None,
        country: None,
        created_date_time: "2031-03-01T09:00:00Z".parse().unwrap(),
        manager: None,
    }
}
