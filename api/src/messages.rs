//! The `message` field of successful responses, in English or (as the seed had them) Korean.

use crate::extract::Lang;

/// Every success message the API sends.
#[derive(Clone, Copy, Debug)]
pub enum Message {
    /// Account created.
    SignedUp,
    /// Signed in.
    SignedIn,
    /// Tokens refreshed.
    Refreshed,
    /// This session ended.
    SignedOut,
    /// Every session ended.
    SignedOutEverywhere,
    /// Profile changed.
    ProfileUpdated,
    /// Account deleted.
    AccountDeleted,
    /// Task created.
    TaskCreated,
    /// Task updated.
    TaskUpdated,
    /// Task deleted.
    TaskDeleted,
    /// Task list.
    TaskList,
    /// One task.
    TaskFound,
    /// Sign-up received; the rest happens by email.
    CheckEmail,
    /// Address verified.
    EmailVerified,
    /// A new verification link is on its way.
    VerificationSent,
}

impl Message {
    /// The text in `lang`.
    pub fn text(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Self::SignedUp, Lang::En) => "signed up successfully",
            (Self::SignedUp, Lang::Ko) => "회원가입이 완료되었습니다.",
            (Self::SignedIn, Lang::En) => "signed in successfully",
            (Self::SignedIn, Lang::Ko) => "사용자가 성공적으로 로그인했습니다.",
            (Self::Refreshed, Lang::En) => "tokens refreshed",
            (Self::Refreshed, Lang::Ko) => "토큰이 갱신되었습니다.",
            (Self::SignedOut, Lang::En) => "signed out",
            (Self::SignedOut, Lang::Ko) => "로그아웃되었습니다.",
            (Self::SignedOutEverywhere, Lang::En) => "signed out of every session",
            (Self::SignedOutEverywhere, Lang::Ko) => "모든 세션에서 로그아웃되었습니다.",
            (Self::ProfileUpdated, Lang::En) => "profile updated",
            (Self::ProfileUpdated, Lang::Ko) => "개인 정보가 수정되었습니다.",
            (Self::AccountDeleted, Lang::En) => "account deleted",
            (Self::AccountDeleted, Lang::Ko) => "회원 탈퇴가 완료되었습니다.",
            (Self::TaskCreated, Lang::En) => "task created successfully",
            (Self::TaskCreated, Lang::Ko) => "작업이 성공적으로 생성되었습니다.",
            (Self::TaskUpdated, Lang::En) => "task updated successfully",
            (Self::TaskUpdated, Lang::Ko) => "작업이 성공적으로 업데이트되었습니다.",
            (Self::TaskDeleted, Lang::En) => "task deleted successfully",
            (Self::TaskDeleted, Lang::Ko) => "작업이 성공적으로 삭제되었습니다",
            (Self::TaskList, Lang::En) => "all tasks",
            (Self::TaskList, Lang::Ko) => "전체 작업 조회",
            (Self::TaskFound, Lang::En) => "task found",
            (Self::TaskFound, Lang::Ko) => "작업 조회",
            (Self::CheckEmail, Lang::En) => "check your email to continue",
            (Self::CheckEmail, Lang::Ko) => "이메일을 확인해 주세요.",
            (Self::EmailVerified, Lang::En) => "email address verified",
            (Self::EmailVerified, Lang::Ko) => "이메일 주소가 확인되었습니다.",
            (Self::VerificationSent, Lang::En) => "a verification link is on its way if your address needs one",
            (Self::VerificationSent, Lang::Ko) => "확인이 필요한 주소라면 확인 링크를 보냈습니다.",
        }
    }
}
